"""What a learner and an instructor meet around the lessons: finished progress bars, links that resolve,
working copies for JupyterLab, exercise checks that log for a grader, and the grade table."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from transfer_utils.core import exercises
from transfer_utils.course import authoring, grading, links, workspace

ROOT = Path(__file__).resolve().parents[1]


def widget_notebook() -> nbformat.NotebookNode:
    """A notebook whose one output is a tqdm widget recorded at 0% with its final state saved."""
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    output = nbformat.v4.new_output("display_data", data={
        authoring.WIDGET_VIEW: view, "text/plain": "draws:   0%|          | 0/3 [00:00<?, ?it/s]"})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("loop()", outputs=[output])])
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"model_name": "HTMLModel", "state": {"value": "draws:\u2007100%"}},
             "b": {"model_name": "FloatProgressModel", "state": {"value": 3.0, "max": 3.0}},
             "c": {"model_name": "HTMLModel", "state": {"value": "\u20073/3\u2007[00:02&lt;00:00,\u20071.5it/s]"}}}
    notebook.metadata["widgets"] = {authoring.WIDGET_STATE: {"state": state}}
    return notebook


def test_progress_bars_are_kept_as_their_final_text(tmp_path):
    notebook = authoring.finish_progress_bars(widget_notebook())
    data = notebook.cells[0].outputs[0].data
    assert data == {"text/plain": "draws: 100%|██████████| 3/3 [00:02<00:00, 1.5it/s]"}
    assert "widgets" not in notebook.metadata


def test_lint_flags_a_bar_frozen_at_zero(tmp_path):
    notebook = widget_notebook()
    notebook.metadata["kernelspec"] = dict(authoring.KERNELSPEC)
    notebook.cells.insert(0, nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}))
    for count, cell in enumerate(notebook.cells, start=1):
        cell.execution_count = count
    path = tmp_path / "00_x.ipynb"
    nbformat.write(notebook, path)
    assert any("progress bar at 0%" in p for p in authoring.lint(path))
    nbformat.write(authoring.finish_progress_bars(notebook), path)
    assert authoring.lint(path) == []


def test_relative_links_resolve_everywhere():
    """Notebooks, README, contributing notes, docs and bench reports: no relative link points nowhere."""
    markdown = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
                *sorted((ROOT / "bench" / "results").glob("*.md"))]
    broken = links.broken_in_markdown_files(markdown)
    broken += [b for nb in authoring.lesson_notebooks() for b in links.broken_in_notebook(nb)]
    assert broken == []


def test_the_link_checker_catches_a_dead_link(tmp_path):
    (tmp_path / "here.md").write_text("x")
    text = "[ok](here.md) [anchor](here.md#part) [web](https://example.org) [dead](09_missing.ipynb) `[code](nope.md)`"
    assert links.broken_in_text(text, tmp_path, "page") == ["page → 09_missing.ipynb"]
    (tmp_path / "page.html").write_text('<a href="here.md">a</a><img src="img/missing.png"><a href="#top">t</a>')
    assert links.broken_in_site(tmp_path) == ["page.html → img/missing.png"]


def test_working_copies_are_made_once_and_never_overwritten(tmp_path):
    written = workspace.prepare_workspace(tmp_path)
    assert [p.name for p in written] == [p.name for p in authoring.lesson_notebooks()]
    mine = tmp_path / written[0].name
    mine.write_text(mine.read_text().replace("Set-up and tour", "Set-up and tour (my notes)"))
    assert workspace.prepare_workspace(tmp_path) == []
    assert "(my notes)" in mine.read_text()
    assert workspace.prepare_workspace(tmp_path, fresh=["00"]) == [mine]
    assert "(my notes)" not in mine.read_text()
    assert any("(my notes)" in p.read_text() for p in tmp_path.glob("00_setup_and_tour.*.ipynb"))
    with pytest.raises(ValueError, match="no lesson called 99"):
        workspace.prepare_workspace(tmp_path, fresh=["99"])


def test_student_working_copies_hold_no_solutions(tmp_path):
    workspace.prepare_workspace(tmp_path, student=True)
    text = "".join(p.read_text() for p in tmp_path.glob("*.ipynb"))
    assert "### BEGIN SOLUTION" not in text and "raise NotImplementedError" in text


def test_lab_opens_the_workspace_and_allows_root():
    as_root = workspace.lab_command(Path("/w"), is_root=True, browser=False, port=8899)
    assert "--allow-root" in as_root and "--ServerApp.root_dir=/w" in as_root and "--no-browser" in as_root
    assert "--allow-root" not in workspace.lab_command(Path("/w"), is_root=False)
    assert "workspace/" in (ROOT / ".gitignore").read_text().split()


def test_checks_log_for_a_grader_and_keep_going(tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(exercises.LOG_ENV, str(log))

    def stub(*args):
        raise NotImplementedError

    exercises.check_value(lambda: 3, 3, name="exercise 1 (a)")
    exercises.check_value(lambda: 4, 3, name="exercise 2 (b)")  # wrong: printed, not raised, while logging
    exercises.check_function(stub, abs, [(1,)], name="exercise 3 (c)")
    exercises.check_prediction(lambda: "lower", "higher", name="exercise 4 (d)", choices=["higher", "lower"],
                               evidence="0.5 → 0.7")
    exercises.check_function(lambda x: 1 / 0, abs, [(1,)], name="exercise 5 (e)")  # a crash is a wrong answer
    statuses = [(r["name"][:10], r["status"], r["kind"]) for r in map(json.loads, log.read_text().splitlines())]
    assert statuses == [("exercise 1", "passed", "value"), ("exercise 2", "failed", "value"),
                        ("exercise 3", "not attempted", "function"), ("exercise 4", "failed", "prediction"),
                        ("exercise 5", "failed", "function")]
    assert "✗ exercise 2 (b)" in capsys.readouterr().out


def test_a_prediction_shows_its_evidence_only_once_made(capsys):
    def stub():
        raise NotImplementedError

    exercises.check_prediction(stub, "higher", name="e", choices=["higher", "lower"], evidence="0.51 → 0.73")
    assert "0.73" not in capsys.readouterr().out
    exercises.check_prediction(lambda: "higher", "higher", name="e", choices=["higher", "lower"], evidence="0.51 → 0.73")
    assert "0.73" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="the run says 'higher'"):
        exercises.check_prediction(lambda: "lower", "higher", name="e", choices=["higher", "lower"], evidence="")
    with pytest.raises(exercises.ExerciseError, match="answer one of"):
        exercises.check_prediction(lambda: "up", "higher", name="e", choices=["higher", "lower"], evidence="")
    with pytest.raises(ValueError, match="not one of the choices"):
        exercises.check_prediction(lambda: "up", "sideways", name="e", choices=["higher", "lower"], evidence="")


def test_grade_tables_list_every_check_of_every_submission():
    grades = [grading.Grade("ann/00_setup_and_tour.ipynb", "00_setup_and_tour",
                            {"exercise 1": "passed", "exercise 2": "failed"}, {"exercise 2": "expected 3 but got 4"}),
              grading.Grade("bob/00_setup_and_tour.ipynb", "00_setup_and_tour",
                            {"exercise 1": "not attempted", "exercise 2": "not reached"}, error="cell 9: ValueError")]
    table = grading.grades_markdown(grades)
    assert "| ann/00_setup_and_tour.ipynb | 1/2 | ✓ | ✗ | ok |" in table
    assert "| bob/00_setup_and_tour.ipynb | 0/2 | ○ | – | cell 9: ValueError |" in table
    rows = grading.grades_csv(grades).splitlines()
    assert rows[0] == "submission,lesson,check,result,message" and len(rows) == 1 + 4 + 1
    assert "ann/00_setup_and_tour.ipynb,00_setup_and_tour,exercise 2,failed,expected 3 but got 4" in rows


def test_grader_refuses_a_notebook_it_cannot_place(tmp_path):
    with pytest.raises(ValueError, match="cannot tell which lesson"):
        grading.lesson_of(tmp_path / "99_unknown.ipynb", authoring.lesson_notebooks())
    with pytest.raises(ValueError, match="not a folder"):
        grading.find_submissions(tmp_path / "missing")
    assert grading.limited_env(tmp_path, tmp_path / "log")["HOME"] == str(tmp_path)


WRONG = '''

def _wrong_answer(function):
    """Make an exercise function answer wrongly (what a learner's slip looks like to the grader)."""
    def perturb(value):
        if isinstance(value, str):
            return "not " + value
        if isinstance(value, (tuple, list)):
            return type(value)(perturb(v) for v in value) if value else [0]
        return value + 1
    return lambda *args: perturb(function(*args))


{name} = _wrong_answer({name})
'''


def submissions(folder: Path) -> tuple[Path, str]:
    """Two submissions of lesson 00: ann's with the reference answers, bob's with one answer wrong."""
    lesson = authoring.lesson_notebooks()[0]
    notebook = nbformat.read(lesson, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    (folder / "ann").mkdir(parents=True)
    nbformat.write(notebook, folder / "ann" / lesson.name)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "### END SOLUTION" in c.source)
    name = authoring.stubbed_names(cell.source)[0]
    end = cell.source.index("\n", cell.source.index("### END SOLUTION"))
    cell.source = cell.source[:end] + WRONG.format(name=name) + cell.source[end:]
    (folder / "bob").mkdir()
    nbformat.write(notebook, folder / "bob" / lesson.name)
    return lesson, name


@pytest.mark.slow
def test_grade_turns_two_submissions_into_the_expected_table(tmp_path):
    from transfer_utils.course.cli import main

    lesson, wrong_function = submissions(tmp_path / "in")
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    rows = list(__import__("csv").DictReader((tmp_path / "out" / "grades.csv").open()))
    names = grading.expected_checks(lesson)
    assert len(names) >= 3
    ann = [r for r in rows if r["submission"].startswith("ann")]
    bob = [r for r in rows if r["submission"].startswith("bob")]
    assert [(r["check"], r["result"]) for r in ann] == [(n, "passed") for n in names]
    assert [r["check"] for r in bob] == names
    assert [r["result"] for r in bob].count("failed") == 1, f"{wrong_function} made wrong: {bob}"
    assert [r["result"] for r in bob].count("passed") == len(names) - 1
    table = (tmp_path / "out" / "grades.md").read_text()
    assert f"| ann/{lesson.name} | {len(names)}/{len(names)} |" in table
    assert f"| bob/{lesson.name} | {len(names) - 1}/{len(names)} |" in table


def test_direction_names_the_change_beyond_a_margin():
    assert [exercises.direction(0.5, a, margin=0.02) for a in (0.6, 0.4, 0.51, 0.52)] == \
        ["higher", "lower", "about the same", "about the same"]
    with pytest.raises(ValueError, match="margin"):
        exercises.direction(0, 1, margin=-1)


def test_a_pair_of_tensors_of_the_wrong_shape_is_a_wrong_answer_not_a_crash():
    import torch

    ids, mask = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(exercises.ExerciseError, match="expected"):
        exercises.check_function(lambda: (ids, mask[:, :2]), lambda: (ids, mask), [()], name="pair")
    exercises.check_function(lambda: (ids, mask), lambda: (ids, mask), [()], name="pair")
    exercises.check_value(lambda: (5, 0.25), (5, 0.2500000001), name="tuple of numbers")


def test_expected_checks_keep_names_that_hold_a_colon(tmp_path):
    lines = "✓ exercise 1 (warm-up): correct\n✓ exercise 4 (experiment: L2-SP strength): 'higher', as the run shows: 0.4 → 0.6\n"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "check()", outputs=[nbformat.v4.new_output("stream", name="stdout", text=lines)])])
    nbformat.write(notebook, tmp_path / "04_x.ipynb")
    assert grading.expected_checks(tmp_path / "04_x.ipynb") == ["exercise 1 (warm-up)", "exercise 4 (experiment: L2-SP strength)"]
