"""Where the course keeps things on disk: the repository, the data folder, caches and run outputs.

Lessons: none directly; the package uses it underneath every lesson.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The data folder: $COURSE_DATA_DIR, else ``data/`` in the repository (or a user cache when installed)."""
    if os.environ.get("COURSE_DATA_DIR"):
        return Path(os.environ["COURSE_DATA_DIR"])
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / "data"
    return Path.home() / ".cache" / "transfer_course"


def assets_dir() -> Path:
    """Local asset cache (prefetched models and datasets): $COURSE_ASSETS_DIR or ``data/assets``."""
    return Path(os.environ.get("COURSE_ASSETS_DIR") or data_dir() / "assets")


def cache_dir() -> Path:
    """Derived, rebuildable files (embeddings, pretrained checkpoints): ``data/cache``."""
    return data_dir() / "cache"


def runs_dir() -> Path:
    """Run outputs (executed notebooks, metrics): $COURSE_RUNS_DIR or ``data/runs``."""
    return Path(os.environ.get("COURSE_RUNS_DIR") or data_dir() / "runs")


def notebooks_dir() -> Path:
    """The folder holding the numbered lesson notebooks."""
    return REPO_ROOT / "notebooks"
