"""A learner's own copies of the lessons, and the command that opens them in JupyterLab.

The committed notebooks under ``notebooks/`` are the course's reference runs; opening them in JupyterLab
would save over them (autosave) and leave ``git status`` dirty. ``make lab`` therefore opens
``workspace/`` instead: a folder beside ``notebooks/`` (so relative links such as ``../README.md`` still
resolve) that git ignores, filled with copies of the lessons the first time. A copy is never overwritten:
``--fresh NN`` sets yours aside as ``NN_name.<time>.ipynb`` and puts a clean copy back.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from transfer_utils.core.paths import REPO_ROOT, notebooks_dir
from transfer_utils.core.storage import atomic_write_text

WORKSPACE = REPO_ROOT / "workspace"


def lesson_copy(source: Path, *, student: bool) -> str:
    """The text of a learner's copy: the executed lesson, or its student version (no solutions, no outputs)."""
    from transfer_utils.course.authoring import student_version

    notebook = nbformat.read(source, as_version=4)
    return nbformat.writes(student_version(notebook) if student else notebook)


def prepare_workspace(folder: Path = WORKSPACE, *, student: bool = False, fresh: list[str] | None = None) -> list[Path]:
    """Copy each lesson into ``folder`` unless a copy is already there; returns the copies written.

    ``fresh`` names lessons (``07`` or a stem) whose copy is set aside with a time stamp and replaced.
    """
    from transfer_utils.course.authoring import lesson_notebooks

    folder.mkdir(parents=True, exist_ok=True)
    lessons = lesson_notebooks()
    renew = {p.name for p in lessons if any(p.stem == n or p.stem[:2] == n for n in (fresh or []))}
    unknown = [n for n in fresh or [] if not any(p.stem == n or p.stem[:2] == n for p in lessons)]
    if unknown:
        raise ValueError(f"no lesson called {', '.join(unknown)}; use a number such as 07 or a full name")
    written = []
    for source in lessons:
        target = folder / source.name
        if target.exists() and source.name in renew:
            target.rename(target.with_suffix(f".{time.strftime('%Y%m%d-%H%M%S')}.ipynb"))
        if not target.exists():
            written.append(atomic_write_text(target, lesson_copy(source, student=student)))
    return written


def trust(paths: list[Path]) -> None:
    """Mark copies as trusted, so JupyterLab renders their recorded outputs (they are the course's own)."""
    if paths:
        subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, paths)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lab_command(folder: Path = WORKSPACE, *, port: int | None = None, browser: bool = True,
                is_root: bool | None = None) -> list[str]:
    """The ``jupyter lab`` command for ``folder``: ``--allow-root`` when run as root (containers, cloud VMs)."""
    is_root = (hasattr(os, "geteuid") and os.geteuid() == 0) if is_root is None else is_root
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={folder}"]
    if is_root:
        command.append("--allow-root")
    if port is not None:
        command.append(f"--port={port}")
    if not browser:
        command.append("--no-browser")
    return command


def open_lab(*, student: bool = False, fresh: list[str] | None = None, port: int | None = None,
             browser: bool = True) -> int:
    """Prepare the working copies, then run JupyterLab on them until it is stopped."""
    written = prepare_workspace(student=student, fresh=fresh)
    trust(written)
    kind = "student versions" if student else "copies"
    print(f"{len(written)} new {kind} in {WORKSPACE}; your edits stay there (git ignores the folder). "
          f"The reference runs stay untouched in {notebooks_dir()}.")
    if importlib.util.find_spec("jupyterlab") is None:
        print("JupyterLab is not installed in this environment: run `make setup` first", file=sys.stderr)
        return 2
    return subprocess.call(lab_command(port=port, browser=browser))
