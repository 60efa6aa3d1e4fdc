"""The lesson notebooks: committed clean, in sync with their sources, and their smoke-run metrics right.

`make test` executes every notebook first (nbval, smoke profile); the tests here read the metrics
files that run wrote. Run alone, they execute the notebook themselves (papermill, smoke profile).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import time
from pathlib import Path
from typing import Any, Callable

import nbformat
import pytest

from transfer_utils.course import catalog
from transfer_utils.core import exercises
from transfer_utils.course import authoring, grading
from transfer_utils.core import results
from transfer_utils.course import runner
from transfer_utils.core.paths import runs_dir

LESSONS = authoring.lesson_notebooks()
SMOKE_BUDGET_SECONDS = 240  # generous ceiling for a 2-core CI machine; the target is about a minute
EXPECTATIONS_DIR = Path(__file__).parent / "expectations"


def expectations(stem: str) -> Callable[[dict[str, Any]], None]:
    """The ``check(metrics)`` function of ``tests/expectations/<stem>.py``: what a smoke run must show."""
    path = EXPECTATIONS_DIR / f"{stem}.py"
    assert path.exists(), f"add tests/expectations/{stem}.py with a check(metrics) function"
    spec = importlib.util.spec_from_file_location(f"expectations_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


def smoke_metrics(notebook: Path, tmp_path: Path) -> dict[str, Any]:
    """This session's smoke-run metrics for a notebook: from the nbval run, else run it now."""
    path = runs_dir() / "smoke" / f"{notebook.stem}.metrics.json"
    session_start = float(os.environ.get("COURSE_TEST_SESSION_START", time.time()))
    if path.exists() and path.stat().st_mtime >= session_start:
        return results.load_metrics(path)
    result = runner.execute(notebook, tmp_path, profile="smoke", progress=False)
    assert result.status == "ok", f"{notebook.name} failed in the smoke profile: {result.error}"
    return results.load_metrics(result.metrics_path)


def test_lessons_exist():
    assert [p.stem for p in LESSONS][:1] == ["00_setup_and_tour"]


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean_and_in_sync(notebook):
    assert authoring.lint(notebook) == []
    assert authoring.check_sync(notebook) == []


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_no_result_is_typed_into_markdown(notebook):
    """Numbers in prose come from the run: a decimal or a percentage in static Markdown is a bug."""
    assert authoring.typed_numbers(nbformat.read(notebook, as_version=4)) == []


def test_the_typed_number_check_catches_results_and_spares_formulas():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "TF-IDF reaches about 0.77 and 58% are positive; $\\ln 2 \\approx 0.69$, `lr = 0.01`, "
        "[08](08_x.ipynb), 8,965 snippets, Python 3")])
    assert [f.split("'")[1] for f in authoring.typed_numbers(nb)] == ["0.77", "58%"]


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_lesson_structure(notebook):
    nb = nbformat.read(notebook, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("**Goals.**", "**Prerequisites.**", "**Time.**", "Summary"):
        assert heading in markdown, f"{notebook.name} lacks {heading}"
    assert catalog.time_line(notebook.stem) in markdown, "refresh the measured time: python bench/lesson_times.py"
    assert authoring.exercise_problems(nb) == [], "see the exercise rules in CONTRIBUTING.md"
    parameters = runner.notebook_parameters(notebook)
    assert {"seed", "device", "profile", "metrics_path"} <= set(parameters)
    # papermill skips a line it cannot parse (e.g. an "=" inside the comment), and then refuses `-p name`
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [node.target.id for node in ast.parse(cell.source).body if isinstance(node, ast.AnnAssign)]
    assert assigned == list(parameters), f"papermill cannot read every parameter line: {set(assigned) - set(parameters)}"
    assert all(info["inferred_type_name"] != "None" for info in parameters.values()), "type every parameter"
    student = authoring.student_version(nb)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in student.cells)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_smoke_metrics(notebook, tmp_path):
    record = smoke_metrics(notebook, tmp_path)
    assert record["notebook"] == notebook.stem and record["profile"] == "smoke"
    assert record["seconds"] < SMOKE_BUDGET_SECONDS
    expectations(notebook.stem)(record["metrics"])


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_committed_notebook_carries_the_metrics_of_its_run(notebook):
    """The numbers the README quotes are the ones this committed run wrote (metadata ``course.metrics``)."""
    record = authoring.committed_metrics(notebook)
    assert record["notebook"] == notebook.stem and record["profile"] == "default"
    expectations(notebook.stem)(record["metrics"])  # the default run clears at least the smoke bars


def test_committed_default_run_metrics_are_in_the_notebook():
    """The committed outputs come from a default-profile run (not a smoke run)."""
    for notebook in LESSONS:
        nb = nbformat.read(notebook, as_version=4)
        outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert "profile='default'" in outputs, f"{notebook.name}: commit the outputs of a default-profile run"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_student_version_runs_and_every_check_reads_not_attempted(notebook, tmp_path, monkeypatch):
    """The version handed to learners runs top to bottom, and each check waits for an answer."""
    student = tmp_path / notebook.name
    student.write_text(nbformat.writes(authoring.student_version(nbformat.read(notebook, as_version=4))))
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(exercises.LOG_ENV, str(log))
    result = runner.execute(student, tmp_path / "out", profile="smoke", progress=False)
    assert result.status == "ok", f"the student version of {notebook.name} failed: {result.error}"
    records = grading.read_log(log)
    assert {r["status"] for r in records} == {"not attempted"}, [r for r in records if r["status"] != "not attempted"]
    assert [r["name"] for r in records] == grading.expected_checks(notebook)
    ran = nbformat.read(tmp_path / "out" / notebook.name, as_version=4)
    printed = "".join(o.get("text", "") for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert printed.count("not attempted") >= authoring.count_exercises(nbformat.read(notebook, as_version=4))
    assert "✓" not in printed  # no exercise passes without an answer
