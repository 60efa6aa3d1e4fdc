"""Authoring tools for the lesson notebooks: build from the ``py:percent`` twin, lint, student versions.

Each lesson is written as ``notebooks/src/NN_name.py`` (jupytext ``py:percent``) and committed as
``notebooks/NN_name.ipynb`` with the outputs of a clean default-profile run. ``build`` turns the
first into the second; ``check_sync`` proves they hold the same cells.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import nbformat

from transfer_utils.core.paths import notebooks_dir, runs_dir
from transfer_utils.core.results import load_metrics
from transfer_utils.core.storage import atomic_write_text

SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
                      re.MULTILINE | re.DOTALL)
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def source_twin(notebook: Path) -> Path:
    """The ``py:percent`` source of a notebook: ``notebooks/src/<stem>.py``."""
    return notebook.parent / "src" / f"{notebook.stem}.py"


def resolve_sources(names: list[str]) -> list[Path]:
    """``py:percent`` sources from names such as ``00`` or ``00_setup_and_tour``."""
    from transfer_utils.course.runner import find_by_stem

    return find_by_stem(names, notebooks_dir() / "src", ".py")


def lesson_notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered lesson notebooks, in order."""
    return sorted((folder or notebooks_dir()).glob("[0-9][0-9]_*.ipynb"))


def read_source(py_path: Path) -> nbformat.NotebookNode:
    """A notebook (no outputs) from its ``py:percent`` source."""
    import jupytext

    notebook = jupytext.read(py_path, fmt="py:percent")
    notebook.metadata = {"kernelspec": dict(KERNELSPEC),
                         "language_info": {"name": "python"}}
    return notebook


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of every cell: what must agree between a notebook and its twin."""
    return [(c.cell_type, c.source.strip(), tuple(sorted(c.get("metadata", {}).get("tags", []))))
            for c in notebook.cells]


def check_sync(notebook: Path) -> list[str]:
    """Differences between a committed notebook and its ``py:percent`` twin (empty when in sync)."""
    twin = source_twin(notebook)
    if not twin.exists():
        return [f"{notebook.name}: no source twin at {twin}"]
    built = _cells(read_source(twin))
    committed = _cells(nbformat.read(notebook, as_version=4))
    committed = [c for c in committed if "injected-parameters" not in c[2]]
    if len(built) != len(committed):
        return [f"{notebook.name}: {len(committed)} cells but its twin has {len(built)}; rebuild it"]
    return [f"{notebook.name}: cell {i} differs from its twin; rebuild it"
            for i, (a, b) in enumerate(zip(built, committed)) if a != b]


def clean_metadata(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill's run metadata (timings, paths) that would make every rebuild a diff."""
    notebook.metadata.pop("papermill", None)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in notebook.cells:
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
    return notebook


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _bar_text(model_id: str, state: dict) -> str | None:
    """The final line of one tqdm notebook bar (``label: 100%|██████████| 36/36 [00:12<00:00]``)."""
    box = state.get(model_id, {}).get("state", {})
    children = [state.get(c.replace("IPY_MODEL_", ""), {}) for c in box.get("children", [])]
    if len(children) != 3:
        return None
    left, right = (html.unescape(str(c.get("state", {}).get("value", ""))).replace("\u2007", " ")
                   for c in (children[0], children[2]))
    done, total = (children[1].get("state", {}).get(key) or 0 for key in ("value", "max"))
    filled = round(10 * done / total) if total else 10
    return f"{left}|{'█' * filled}{' ' * (10 - filled)}|{right}"


def finish_progress_bars(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Replace each progress-bar widget by the plain text of its final state, and drop the widget state.

    An untrusted notebook (every fresh clone), GitHub and the static site show a widget's text fallback,
    which tqdm records at the bar's start ("0%|"); the text of the last state reads the same everywhere.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            text = _bar_text(view.get("model_id", ""), state) or output["data"].get("text/plain", "")
            output["data"] = {"text/plain": text}
    notebook.metadata.pop("widgets", None)
    return notebook


def build(py_path: Path, *, profile: str = "default", execute: bool = True) -> tuple[Path, dict | None]:
    """Write ``notebooks/<stem>.ipynb`` from its source and execute it top to bottom.

    Returns the notebook's path and the run's report (``seconds``, ``peak_mb``; None when not
    executed). Raises ``RuntimeError`` naming the failing cell when the run fails; the committed
    notebook is then left as it was and the failed run is kept under ``data/runs/build/``.
    """
    from transfer_utils.course.runner import run_in_child

    out = py_path.parent.parent / f"{py_path.stem}.ipynb"
    fresh = nbformat.writes(read_source(py_path))
    if not execute:
        atomic_write_text(out, fresh)
        return out, None
    scratch = runs_dir() / "build" / out.name  # papermill saves after every cell: never into the committed file
    atomic_write_text(scratch, fresh)
    # No parameters for the default profile, so papermill injects no cell: the committed run is the
    # notebook's own defaults. The child process measures wall time and peak memory like `run` does.
    spec = {"input": str(scratch.resolve()), "output": str(scratch.resolve()), "cwd": str(out.parent.resolve()),
            "params": {"profile": profile} if profile != "default" else None, "progress": True}
    metrics_path = runs_dir() / profile / f"{py_path.stem}.metrics.json"  # where the lesson writes by default
    metrics_path.unlink(missing_ok=True)  # a stale file must never pass for this run's numbers
    report = run_in_child(spec)
    if report["error"] is not None:
        raise RuntimeError(f"{out.name} failed while building (the run is in {scratch}): {report['error']}")
    built = finish_progress_bars(clean_metadata(nbformat.read(scratch, as_version=4)))
    attach_metrics(built, load_metrics(metrics_path))
    atomic_write_text(out, nbformat.writes(built))
    return out, report


def attach_metrics(notebook: nbformat.NotebookNode, record: dict) -> nbformat.NotebookNode:
    """Keep the run's metrics record in the notebook's metadata (``course.metrics``): the committed
    numbers and the committed outputs then come from one run, and the README's results are read from it."""
    notebook.metadata.setdefault("course", {})["metrics"] = record
    return notebook


def committed_metrics(notebook: Path) -> dict:
    """The metrics record of a committed notebook's run (``course.metrics`` in its metadata)."""
    record = nbformat.read(notebook, as_version=4).metadata.get("course", {}).get("metrics")
    if record is None:
        raise ValueError(f"{notebook.name} carries no metrics: rebuild it with `python -m transfer_utils build "
                         f"{notebook.stem[:2]}`")
    return record


def lint(notebook: Path) -> list[str]:
    """Problems with a committed notebook: parameters cell, clean in-order run, no errors, kernel."""
    nb = nbformat.read(notebook, as_version=4)
    problems = []
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if not any("parameters" in c.metadata.get("tags", []) for c in code):
        problems.append("no cell tagged 'parameters'")
    if any("injected-parameters" in c.metadata.get("tags", []) for c in code):
        problems.append("holds papermill's injected-parameters cell: commit a default-profile run")
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"not a clean top-to-bottom run: execution counts {counts[:8]}...")
    if any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])):
        problems.append("holds an error output")
    texts = [str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
             for c in code for o in c.get("outputs", [])]
    if any(WIDGET_VIEW in o.get("data", {}) for c in code for o in c.get("outputs", [])) or \
            any(re.search(r"(?<!\d)0%\|", t) for t in texts):
        problems.append("shows a progress bar at 0% (a widget's text fallback): rebuild it, or run "
                        "authoring.finish_progress_bars on it")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append(f"kernelspec is {nb.metadata.get('kernelspec', {}).get('name')!r}, expected 'python3'")
    return [f"{notebook.name}: {p}" for p in problems]


# A measured number in static Markdown is a result typed by hand: render it from the run instead.
# Decimals and percentages count; math ($...$), code (`...`), link targets and the **Time.** line
# (written by bench/lesson_times.py from measurements) are left alone, so a method's constants are
# written as formulas or code.
TYPED_NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])|(?<![\w.])\d+(?:\.\d+)?\s?%")
_EXEMPT = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)|\*\*Time\.\*\*[^\n]*", re.DOTALL)


def typed_numbers(notebook: nbformat.NotebookNode) -> list[str]:
    """Decimals and percentages written into Markdown cells (outside math, code and link targets)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        text = _EXEMPT.sub(" ", cell.source)
        found += [f"cell {index}: {m.group(0)!r} in ...{text[max(0, m.start() - 40):m.end() + 20]!r}..."
                  for m in TYPED_NUMBER.finditer(text)]
    return found


def count_exercises(notebook: nbformat.NotebookNode) -> int:
    """How many solution blocks a notebook holds."""
    return sum(len(SOLUTION.findall(c.source)) for c in notebook.cells if c.cell_type == "code")


CHECKS = ("check_value", "check_function", "check_true", "check_prediction")


def _check_calls(notebook: nbformat.NotebookNode) -> tuple[list[ast.Call], set[str]]:
    """The exercise check calls of a notebook's code, and the names of the functions it defines."""
    calls, defined = [], set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse("\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in CHECKS:
                calls.append(node)
    return calls, defined


def exercise_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Breaches of the exercise rules (CONTRIBUTING.md): too few exercises, no experiment, a reference
    answer written into the notebook, repeated check names."""
    calls, defined = _check_calls(notebook)
    kinds = [getattr(c.func, "id", getattr(c.func, "attr", "")) for c in calls]
    problems = []
    if count_exercises(notebook) < 3:
        problems.append(f"{count_exercises(notebook)} exercises; at least 3")
    if "check_prediction" not in kinds:
        problems.append("no experiment: add an exercise checked with check_prediction")
    for call, kind in zip(calls, kinds):
        reference = call.args[1] if len(call.args) > 1 else None
        shown = ast.unparse(reference) if reference is not None else ""
        if kind == "check_value" and not shown.startswith("solutions."):
            problems.append(f"line {call.lineno}: check_value's expected answer {shown!r} is visible; compute it "
                            "with transfer_utils.solutions")
        if kind == "check_function" and (isinstance(reference, ast.Lambda) or shown in defined):
            problems.append(f"line {call.lineno}: check_function's reference {shown!r} is written in the notebook")
    names = [kw.value.value for c in calls for kw in c.keywords if kw.arg == "name" and isinstance(kw.value, ast.Constant)]
    problems += [f"check name {n!r} used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    return problems


def strip_solutions(source: str) -> str:
    """Replace every solution block with a ``raise NotImplementedError`` at the same indentation."""
    return SOLUTION.sub(lambda m: f"{m['indent']}# YOUR CODE HERE\n{m['indent']}raise NotImplementedError\n", source)


def stubbed_names(source: str) -> list[str]:
    """Names of the functions whose body holds a solution block (they become stubs for students)."""
    names = []
    for match in SOLUTION.finditer(source):
        defs = re.findall(r"^[ \t]*def[ \t]+(\w+)\s*\(", source[:match.start()], re.MULTILINE)
        if defs and defs[-1] not in names:
            names.append(defs[-1])
    return names


def guard_stub_use(source: str, names: list[str]) -> str:
    """Wrap a cell that calls a stubbed exercise function so that a stub skips the cell instead of
    stopping the notebook (the exercise's own check already says "not attempted")."""
    used = [n for n in names if re.search(rf"\b{re.escape(n)}\b", source)]
    if not used:
        return source
    body = "\n".join(("    " + line) if line.strip() else line for line in source.splitlines())
    shown = ", ".join(used)
    return (f"try:  # uses {shown}: runs once your answer is in\n{body}\n"
            f"except NotImplementedError:\n"
            f"    print(\"○ skipped: this cell uses {shown}, not attempted yet\")\n")


def student_version(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without solutions, outputs or widget state, that runs top to bottom as handed out.

    Each exercise's function becomes a stub raising ``NotImplementedError``; its check reports "not
    attempted", and any later cell that calls the stub is wrapped so that it is skipped with a note.
    """
    student = nbformat.from_dict(notebook)
    student.metadata.pop("widgets", None)  # the teacher's progress bars ("360/360 [03:43...]")
    student.metadata.pop("papermill", None)
    stubs: list[str] = []
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        defined_here = stubbed_names(cell.source)
        cell.source = strip_solutions(cell.source)
        if not defined_here:
            cell.source = guard_stub_use(cell.source, stubs)
        stubs += [n for n in defined_here if n not in stubs]
        cell.outputs = []
        cell.execution_count = None
        for key in ("papermill", "execution", "widgets"):
            cell.metadata.pop(key, None)
    return student


def write_student_versions(out_dir: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Student copies of the lessons in ``out_dir`` (solutions removed, outputs cleared)."""
    written = []
    for path in notebooks or lesson_notebooks():
        student = student_version(nbformat.read(path, as_version=4))
        written.append(atomic_write_text(out_dir / path.name, nbformat.writes(student)))
    return written
