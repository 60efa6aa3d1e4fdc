"""Test-session set-up shared by the notebook run (nbval) and the unit tests.

Notebooks executed by nbval cannot receive papermill parameters, so the profile and the output folder
are chosen through the environment before any kernel starts: smoke profile, metrics in a fresh
temporary folder that the metric tests read back.
"""

import os
import tempfile
import time


def pytest_configure(config):
    os.environ["COURSE_PROFILE"] = "smoke"
    os.environ.setdefault("COURSE_RUNS_DIR", tempfile.mkdtemp(prefix="course-test-runs-"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["COURSE_TEST_SESSION_START"] = str(time.time())
