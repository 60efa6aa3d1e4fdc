"""The package's shape: floors that imports only point down, no import cycles, every module placed.

Run alone: ``python -m pytest tests/test_architecture.py -q``; ``python -m transfer_utils.course.imports``
prints the graph.
"""

import pytest

from transfer_utils.course import imports


def test_every_module_has_a_floor():
    graph = imports.import_graph()
    unplaced = [m for m in graph if imports.floor_of(m) is None]
    assert unplaced == [], f"add these modules to FLOORS in transfer_utils/course/imports.py: {unplaced}"


def test_imports_only_point_down_the_floors():
    assert imports.upward_imports(imports.import_graph()) == []


def test_no_import_cycles():
    assert imports.find_cycles(imports.import_graph()) == []


def test_teaching_code_never_imports_the_machinery():
    graph = imports.import_graph()
    leaks = [(m, d) for m, deps in graph.items() for d in deps
             if not m.startswith("transfer_utils.course") and d.startswith("transfer_utils.course")
             and m != "transfer_utils.__main__"]
    assert leaks == []


def test_the_checker_catches_a_cycle_and_an_upward_import():
    graph = {"transfer_utils.core.a": {"transfer_utils.data.b"}, "transfer_utils.data.b": {"transfer_utils.core.a"}}
    assert imports.find_cycles(graph) == [["transfer_utils.core.a", "transfer_utils.data.b"]]
    assert imports.upward_imports(graph) == [("transfer_utils.core.a", "transfer_utils.data.b")]


@pytest.mark.parametrize("module", sorted(imports.teaching_modules()))
def test_each_teaching_module_names_the_lessons_that_import_it(module):
    doc = imports.module_docstring(module)
    assert "\nLessons:" in doc, f"{module}'s docstring needs a 'Lessons: NN, NN.' line"
    missing = sorted(set(imports.lessons_using(module)) - set(imports.lessons_named(doc)))
    assert missing == [], f"{module} is imported by lessons {missing}: add them to its docstring's 'Lessons:' line"
