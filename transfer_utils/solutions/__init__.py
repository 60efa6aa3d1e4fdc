"""Reference answers to the lessons' exercises, one module per lesson (``lesson02`` answers lesson 02).

The exercise checks call these functions, so a notebook never shows the answer it checks against.
Try an exercise before reading its module: the checks tell you when you are right.
"""
