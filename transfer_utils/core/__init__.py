"""Floor 0, the basics every other part uses: paths, run-time set-up, safe files, metrics, plots, exercise checks."""
