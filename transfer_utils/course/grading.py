"""Grade students' notebooks: run each through the runner and tabulate which exercise checks passed.

``python -m transfer_utils grade SUBMISSIONS_DIR`` finds every ``NN_*.ipynb`` below the folder (one
sub-folder per student works well), runs it in the smoke profile with a time limit, and writes
``grades.csv`` (one row per submission and check) and ``grades.md`` (one table per lesson).

Each check in ``transfer_utils.core.exercises`` appends its outcome to the log that
``TRANSFER_UTILS_CHECKS_LOG`` names, and while that log is on a wrong answer does not stop the notebook.
A check that never ran (the notebook failed or timed out before it) reads "not reached".

A submission is code written by someone else. Each runs in a child process with a time limit, in a
fresh temporary folder as its working directory and home, with a reduced environment (no tokens or
credentials are passed on) and a cap on the size of files it may write. That limits accidents, it
is not a sandbox: grade untrusted work inside a container or as a user who can read nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from transfer_utils.core.storage import atomic_write_text

STATUSES = ("passed", "failed", "not attempted", "not reached")
SYMBOLS = {"passed": "✓", "failed": "✗", "not attempted": "○", "not reached": "–"}
PASSED_LINE = re.compile(r"^✓ (exercise \d+[^\n]*?\)): ", re.MULTILINE)  # names may hold a colon: "(experiment: ...)"
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "COURSE_DATA_DIR", "COURSE_ASSETS_DIR",
            "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
            "TORCH_HOME", "XDG_CACHE_HOME")


@dataclass
class Grade:
    """One submission's outcome: each check's status, and the run's error if it stopped early."""

    submission: str
    lesson: str
    checks: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def score(self) -> str:
        """``passed/total``."""
        return f"{sum(s == 'passed' for s in self.checks.values())}/{len(self.checks)}"


def expected_checks(lesson: Path) -> list[str]:
    """The names of a lesson's checks, read from its committed run (where every check passed)."""
    notebook = nbformat.read(lesson, as_version=4)
    text = "\n".join(str(o.get("text", "")) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    return list(dict.fromkeys(PASSED_LINE.findall(text)))


def lesson_of(submission: Path, lessons: list[Path]) -> Path:
    """The lesson a submission answers, from its file name (``07_bert_fine_tuning.ipynb`` or ``07_*``)."""
    match = [p for p in lessons if submission.stem == p.stem or submission.stem.startswith(p.stem[:3])]
    if len(match) != 1:
        raise ValueError(f"{submission}: cannot tell which lesson this is; name it like "
                         f"'07_bert_fine_tuning.ipynb' (lesson number first)")
    return match[0]


def find_submissions(folder: Path) -> list[Path]:
    """Every lesson-numbered notebook below ``folder`` (checkpoints skipped)."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions")
    return sorted(p for p in folder.rglob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def limited_env(home: Path, log: Path) -> dict[str, str]:
    """The environment a submission runs with: the essentials, offline flags, its own home and the log."""
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TRANSFER_UTILS_CHECKS_LOG=str(log))
    return env


def read_log(log: Path) -> list[dict]:
    """The check records a run appended (empty when it reached none)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def grade_one(submission: Path, lesson: Path, root: Path, *, profile: str = "smoke", timeout: float = 900,
              max_file_mb: int = 2048) -> Grade:
    """Run one submission and collect its checks."""
    from transfer_utils.course.runner import execute

    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        scratch = Path(scratch)
        copy = scratch / lesson.name  # the lesson's own name, so the lesson code finds its parameters
        copy.write_bytes(submission.read_bytes())
        log = scratch / "checks.jsonl"
        result = execute(copy, scratch / "out", profile=profile, progress=False, timeout=timeout,
                         env=limited_env(scratch, log), max_file_mb=max_file_mb)
        records = read_log(log)
    grade = Grade(str(submission.relative_to(root)), lesson.stem, error=result.error)
    for name in expected_checks(lesson):
        grade.checks[name] = "not reached"
    for record in records:
        grade.checks[record["name"]] = record["status"]
        if record.get("message"):
            grade.messages[record["name"]] = record["message"]
    return grade


def grade_folder(folder: Path, *, profile: str = "smoke", timeout: float = 900) -> list[Grade]:
    """Grade every submission below ``folder``; a notebook the grader cannot place is reported, not run."""
    from transfer_utils.course.authoring import lesson_notebooks

    lessons = lesson_notebooks()
    grades = []
    for submission in find_submissions(folder):
        try:
            lesson = lesson_of(submission, lessons)
        except ValueError as problem:
            grades.append(Grade(str(submission.relative_to(folder)), "?", error=str(problem)))
            continue
        grades.append(grade_one(submission, lesson, folder, profile=profile, timeout=timeout))
    return grades


def grades_csv(grades: list[Grade]) -> str:
    """One row per submission and check: submission, lesson, check, result, message."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "lesson", "check", "result", "message"])
    for grade in grades:
        for name, status in grade.checks.items():
            writer.writerow([grade.submission, grade.lesson, name, status, grade.messages.get(name, "")])
        if grade.error:
            writer.writerow([grade.submission, grade.lesson, "(run)", "stopped", grade.error])
    return out.getvalue()


def grades_markdown(grades: list[Grade]) -> str:
    """One table per lesson: a row per submission, a column per check, the score and any run error."""
    lines = ["# Grades", "", "✓ passed · ✗ wrong answer · ○ not attempted · – not reached (the run stopped before it)"]
    for lesson in dict.fromkeys(g.lesson for g in grades):
        rows = [g for g in grades if g.lesson == lesson]
        names = list(dict.fromkeys(n for g in rows for n in g.checks))
        lines += ["", f"## {lesson}", "", "| submission | score | " + " | ".join(names) + " | run |",
                  "|" + "---|" * (len(names) + 3)]
        for g in rows:
            cells = [SYMBOLS[g.checks.get(n, "not reached")] for n in names]
            run = "ok" if g.error is None else g.error.replace("|", "/")[:120]
            lines.append(f"| {g.submission} | {g.score} | " + " | ".join(cells) + f" | {run} |")
    return "\n".join(lines) + "\n"


def write_grades(grades: list[Grade], out_dir: Path) -> tuple[Path, Path]:
    """Write ``grades.csv`` and ``grades.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return (atomic_write_text(out_dir / "grades.csv", grades_csv(grades)),
            atomic_write_text(out_dir / "grades.md", grades_markdown(grades)))
