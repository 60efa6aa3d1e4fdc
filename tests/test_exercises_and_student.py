"""Exercise checks and student versions."""

import nbformat
import numpy as np
import pytest

from transfer_utils.core import exercises
from transfer_utils.course import authoring


def test_check_function_pass_fail_and_stub(capsys):
    exercises.check_function(lambda x: x * 2, lambda x: x + x, [(np.arange(3),)], name="double")
    assert "✓ double" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="expected array"):
        exercises.check_function(lambda x: x * 3, lambda x: x + x, [(np.arange(3),)], name="double")

    def stub(x):
        raise NotImplementedError

    exercises.check_function(stub, lambda x: x, [(1,)], name="todo")
    assert "not attempted yet" in capsys.readouterr().out


def test_check_value_handles_shapes_tuples_and_strings(capsys):
    exercises.check_value((5, 0.25), (5, 0.2500000001), name="pair")
    with pytest.raises(exercises.ExerciseError):
        exercises.check_value([1, 2], [1, 2, 3], name="shape")
    with pytest.raises(exercises.ExerciseError, match="Hint: count"):
        exercises.check_value("abc", 3, name="type", hint="count")
    exercises.check_value(lambda: "fresh", "fresh", name="label")
    assert capsys.readouterr().out.count("✓") == 2


SOURCE = '''def f(x):
    ### BEGIN SOLUTION
    y = x + 1
    return y
    ### END SOLUTION

check(f)'''


def test_strip_solutions_keeps_indentation_and_checks():
    stripped = authoring.strip_solutions(SOURCE)
    assert "x + 1" not in stripped and "    raise NotImplementedError" in stripped
    assert stripped.endswith("check(f)")
    namespace = {}
    exec(stripped.replace("check(f)", ""), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_student_version_clears_outputs_and_solutions():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOURCE, execution_count=1,
                                                                          outputs=[nbformat.v4.new_output("stream", text="x")])])
    assert authoring.count_exercises(notebook) == 1
    student = authoring.student_version(notebook)
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    assert authoring.count_exercises(student) == 0
    assert notebook.cells[0].source == SOURCE  # the original is untouched
