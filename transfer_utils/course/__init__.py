"""The machinery that runs and authors the course (not needed to read a lesson):
runner, command line, notebook build / lint / student versions, lesson catalogue and times, prefetch."""
