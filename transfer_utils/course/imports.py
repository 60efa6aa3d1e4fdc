"""The package's floors and its import graph: imports point only down, and never in a circle.

``python -m transfer_utils.course.imports`` prints every module with its floor and what it imports;
``tests/test_architecture.py`` fails on an upward import, a cycle or a module with no floor.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Lowest floor first. A module may import from its own floor or any floor below it.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core: paths, run-time set-up, safe files, metrics, plots, exercise checks", ("transfer_utils.core",)),
    ("data: assets, datasets, domain shifts, loaders", ("transfer_utils.data",)),
    ("training: the loop, checkpoints, modes", ("transfer_utils.training",)),
    ("models: pretrained models, embeddings, small networks", ("transfer_utils.models",)),
    ("methods: transfer methods by type", ("transfer_utils.methods",)),
    ("lesson tools: attention, fine-tuning, learning curves, looking inside CNNs",
     ("transfer_utils.applications", "transfer_utils.attention", "transfer_utils.fine_tuning",
      "transfer_utils.learning_curves", "transfer_utils.scaling", "transfer_utils.vision")),
    ("reference answers to the exercises (one module per lesson)", ("transfer_utils.solutions",)),
    ("course machinery: runner, CLI, authoring, catalogue, prefetch", ("transfer_utils.course",
                                                                       "transfer_utils.__main__")),
]


def module_name(path: Path) -> str:
    """``transfer_utils/data/assets.py`` → ``transfer_utils.data.assets`` (``__init__`` → the package)."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


@functools.lru_cache(maxsize=None)
def _package_imports(path: Path, stamp: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(module, names)`` of each package import in a file (``names`` empty for ``import x``), kept while
    the file is unchanged: the lesson map reads each file many times."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("transfer_utils"):
            found.append((node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found += [(a.name, ()) for a in node.names if a.name.startswith("transfer_utils")]
    return tuple(found)


def package_imports(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The package imports of a Python file, anywhere in it (see ``_package_imports``)."""
    return _package_imports(path, path.stat().st_mtime_ns)


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``target`` (``a.b.c`` or ``a.b.name``) names."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (anywhere in the file), package roots included."""
    known = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        deps: set[str] = set()
        for module, names in package_imports(path):
            if not names:  # `import transfer_utils.x`
                deps.add(_resolve(module, known) or module)
            for alias in names:  # `from pkg import module` imports the module itself
                deps.add(_resolve(f"{module}.{alias}", known) or module)
        deps.discard(name)
        deps.discard("transfer_utils")  # the root package only holds the docstring and the version
        graph[name] = deps
    return graph


def floor_of(module: str) -> int | None:
    """The floor number of a module (0 = core), or None when no floor claims it."""
    if module == "transfer_utils":
        return 0
    for number, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module sits on a higher floor."""
    bad = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            low, high = floor_of(module), floor_of(dep)
            if low is not None and high is not None and high > low:
                bad.append((module, dep))
    return bad


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def module_path(module: str) -> Path:
    """The source file of a package module."""
    return _modules()[module]


def teaching_modules() -> list[str]:
    """Modules below the machinery floor that hold code (not just a package docstring)."""
    machinery = len(FLOORS) - 1
    return [m for m, p in _modules().items()
            if floor_of(m) not in (None, machinery) and p.name != "__init__.py"]


def module_docstring(module: str) -> str:
    """The docstring of a module, read without importing it."""
    return ast.get_docstring(ast.parse(_modules()[module].read_text(encoding="utf-8"))) or ""


def lessons_named(doc: str) -> list[str]:
    """The lesson numbers on a docstring's ``Lessons:`` line (``Lessons: 04, 08.``)."""
    line = next((ln for ln in doc.splitlines() if ln.strip().startswith("Lessons:")), "")
    return re.findall(r"\b[0-9][0-9]\b", line)


def file_imports(path: Path, known: dict[str, Path] | None = None) -> list[str]:
    """The package modules a Python file (a lesson source, a test) imports."""
    known = known or _modules()
    modules = set()
    for module, names in package_imports(path):
        modules.update(_resolve(f"{module}.{name}", known) or module for name in names)
    return sorted(m for m in modules if m in known)


def lesson_imports(src_dir: Path | None = None) -> dict[str, list[str]]:
    """Lesson number → the package modules its ``py:percent`` source imports."""
    src_dir = src_dir or PACKAGE_DIR.parent / "notebooks" / "src"
    return {path.name[:2]: file_imports(path) for path in sorted(src_dir.glob("[0-9][0-9]_*.py"))}


def tests_of(module: str) -> list[Path]:
    """The test files that import ``module`` (or the package that re-exports it)."""
    graph, known = import_graph(), _modules()
    found = []
    for path in sorted((PACKAGE_DIR.parent / "tests").glob("test_*.py")):
        modules = set(file_imports(path, known))
        modules.update(d for m in list(modules) if known[m].name == "__init__.py" for d in graph[m])
        if module in modules:
            found.append(path)
    return found


def lessons_using(module: str) -> list[str]:
    """Lesson numbers whose notebooks import ``module``, directly or through a package that re-exports it."""
    graph, known = import_graph(), _modules()
    used = []
    for lesson, modules in lesson_imports().items():
        reached = set(modules)
        reached.update(d for m in modules if known[m].name == "__init__.py" for d in graph[m])
        if module in reached:
            used.append(lesson)
    return used


def main() -> int:
    """Print the floors with their modules and imports; exit 1 on an upward import or a cycle."""
    graph = import_graph()
    for number, (title, _) in enumerate(FLOORS):
        print(f"floor {number}: {title}")
        for module in sorted(m for m in graph if floor_of(m) == number):
            print(f"    {module} -> {', '.join(sorted(graph[module])) or '(nothing in the package)'}")
    problems = upward_imports(graph) + [tuple(c) for c in find_cycles(graph)]
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
