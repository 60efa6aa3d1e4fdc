"""Instant checks for the exercises: compare a learner's answer with the course's reference.

In a lesson, a solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers; the
student version of the notebook (``python -m transfer_utils student``) replaces it with
``raise NotImplementedError``, and the check then says "not attempted yet" instead of failing.
Reference answers live in ``transfer_utils.solutions`` (one module per lesson), never in the notebook.

When ``TRANSFER_UTILS_CHECKS_LOG`` names a file (``python -m transfer_utils grade`` sets it), each check
appends one JSON line ``{"name", "status", "message"}`` there and a wrong answer prints "✗" instead of
stopping the notebook, so that one mistake does not hide the later exercises from the grader.

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import numpy as np

LOG_ENV = "TRANSFER_UTILS_CHECKS_LOG"


class ExerciseError(AssertionError):
    """A learner's answer differs from the reference; the message shows where."""

    def _render_traceback_(self) -> list[str]:
        return [f"ExerciseError: {self}"]


def _as_array(value: Any) -> Any:
    """Tensors and lists to numpy arrays, so answers of either kind can be compared."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], str):
        try:
            return np.asarray(value)
        except ValueError:  # ragged, e.g. tensors of different shapes: keep it as it is
            return value
    return value


def _close(yours: Any, expected: Any, atol: float, rtol: float) -> bool:
    """Equal for strings and other objects, ``allclose`` with matching shapes for numbers, element by
    element for tuples (such as a pair of tensors)."""
    if isinstance(expected, tuple):
        return (isinstance(yours, (tuple, list)) and len(yours) == len(expected)
                and all(_close(a, b, atol, rtol) for a, b in zip(yours, expected)))
    yours, expected = _as_array(yours), _as_array(expected)
    if isinstance(expected, (np.ndarray, float, int, np.number)) and not isinstance(expected, bool):
        try:
            yours = np.asarray(yours, dtype=float)
        except (TypeError, ValueError):
            return False  # not numbers at all
        expected = np.asarray(expected, dtype=float)
        return yours.shape == expected.shape and np.allclose(yours, expected, atol=atol, rtol=rtol)
    try:
        return bool(yours == expected)
    except (TypeError, ValueError):  # e.g. arrays compared with a list: not the same answer
        return False


def _brief(value: Any) -> str:
    """A short printable form of an argument or result."""
    value = _as_array(value)
    if isinstance(value, np.ndarray):
        text = np.array2string(value.round(4) if value.dtype.kind == "f" else value, threshold=8, edgeitems=2)
        return f"array{value.shape} {text}"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _record(name: str, status: str, message: str = "", kind: str = "value") -> None:
    """Append one check's outcome to the grading log, when a grader asked for one."""
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "status": status, "kind": kind, "message": message}) + "\n")


def passed(name: str, detail: str = "correct", kind: str = "value") -> None:
    """Report a correct answer."""
    _record(name, "passed", kind=kind)
    print(f"✓ {name}: {detail}")


def failed(name: str, message: str, kind: str = "value") -> None:
    """Report a wrong answer: raise ExerciseError, or only print it while a grader is logging."""
    _record(name, "failed", message, kind)
    if os.environ.get(LOG_ENV):
        print(f"✗ {name}: {message}")
        return
    raise ExerciseError(f"{name}: {message}")


def not_attempted(name: str, kind: str = "value") -> None:
    """Say that an exercise is still a stub (a stub is not an error: the notebook can go on)."""
    _record(name, "not attempted", kind=kind)
    print(f"○ {name}: not attempted yet - replace `raise NotImplementedError` with your code and rerun")


def _answer(yours: Any, name: str, kind: str) -> tuple[bool, Any]:
    """Call a learner's function of no arguments; (False, None) when it is still a stub."""
    if not callable(yours):
        return True, yours
    try:
        return True, yours()
    except NotImplementedError:
        not_attempted(name, kind)
        return False, None
    except Exception as error:
        _raised(name, error, kind)
        return False, None


def _raised(name: str, error: Exception, kind: str) -> None:
    """A learner's code raised: a grader records it as a wrong answer; a learner sees the traceback."""
    if not os.environ.get(LOG_ENV):
        raise error
    failed(name, f"your code raised {type(error).__name__}: {error}", kind)


def check_function(yours: Callable, reference: Callable, cases: Sequence[tuple], *, name: str,
                   atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Call both functions on each tuple of arguments and compare; raise ExerciseError on a mismatch."""
    for args in cases:
        try:
            got = yours(*args)
        except NotImplementedError:
            not_attempted(name, "function")
            return
        except Exception as error:
            _raised(name, error, "function")
            return
        want = reference(*args)
        if not _close(got, want, atol, rtol):
            shown = ", ".join(_brief(a) for a in args)
            failed(name, f"for input ({shown}) expected {_brief(want)} but got {_brief(got)}", "function")
            return
    passed(name, f"matches the reference on {len(cases)} case(s)", "function")


def check_value(yours: Any, expected: Any, *, name: str, atol: float = 1e-6, rtol: float = 1e-5,
                hint: str = "") -> None:
    """Compare an answer (or a function of no arguments that computes it) with the expected value.

    In a lesson, ``expected`` comes from ``transfer_utils.solutions`` so that the notebook never shows it.
    """
    attempted, yours = _answer(yours, name, "value")
    if not attempted:
        return
    if not _close(yours, expected, atol, rtol):
        failed(name, f"expected {_brief(expected)} but got {_brief(yours)}" + (f". Hint: {hint}" if hint else ""))
        return
    passed(name)


def check_true(condition: Any, *, name: str, message: str) -> None:
    """Pass when ``condition`` (or a function of no arguments returning it) holds; else explain."""
    attempted, condition = _answer(condition, name, "true")
    if not attempted:
        return
    if not condition:
        failed(name, message, "true")
        return
    passed(name, kind="true")


def check_prediction(yours: Any, outcome: str, *, name: str, choices: Sequence[str], evidence: str) -> None:
    """An experiment's check: the learner's prediction (one of ``choices``) against the measured outcome.

    ``evidence`` (the measured numbers) is printed only once a prediction is in, so it cannot be read first.
    """
    if outcome not in choices:
        raise ValueError(f"{name}: the outcome {outcome!r} is not one of the choices {list(choices)}")
    attempted, prediction = _answer(yours, name, "prediction")
    if not attempted:
        return
    if prediction not in choices:
        failed(name, f"answer one of {list(choices)}, not {prediction!r}", "prediction")
        return
    if prediction != outcome:
        failed(name, f"you predicted {prediction!r}, the run says {outcome!r}: {evidence}", "prediction")
        return
    passed(name, f"{prediction!r}, as the run shows: {evidence}", "prediction")


DIRECTIONS = ["higher", "lower", "about the same"]


def direction(before: float, after: float, *, margin: float) -> str:
    """"higher", "lower" or "about the same": how ``after`` compares with ``before``, ignoring moves
    smaller than ``margin`` (the outcome of an experiment exercise, for ``check_prediction``)."""
    if margin < 0:
        raise ValueError(f"margin must be ≥ 0, got {margin}")
    if after > before + margin:
        return "higher"
    if after < before - margin:
        return "lower"
    return "about the same"
