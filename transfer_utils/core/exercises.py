"""Instant checks for the exercises: compare a learner's answer with the course's reference.

In a lesson, a solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers; the
student version of the notebook (``python -m transfer_utils student``) replaces it with
``raise NotImplementedError``, and the check then says "not attempted yet" instead of failing.

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


class ExerciseError(AssertionError):
    """A learner's answer differs from the reference; the message shows where."""

    def _render_traceback_(self) -> list[str]:
        return [f"ExerciseError: {self}"]


def _as_array(value: Any) -> Any:
    """Tensors and lists to numpy arrays, so answers of either kind can be compared."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], str):
        return np.asarray(value)
    return value


def _close(yours: Any, expected: Any, atol: float, rtol: float) -> bool:
    """Equal for strings and other objects, ``allclose`` with matching shapes for numbers."""
    yours, expected = _as_array(yours), _as_array(expected)
    if isinstance(expected, (np.ndarray, float, int, np.number)) and not isinstance(expected, bool):
        try:
            yours = np.asarray(yours, dtype=float)
        except (TypeError, ValueError):
            return False  # not numbers at all
        expected = np.asarray(expected, dtype=float)
        return yours.shape == expected.shape and np.allclose(yours, expected, atol=atol, rtol=rtol)
    return yours == expected


def _brief(value: Any) -> str:
    """A short printable form of an argument or result."""
    value = _as_array(value)
    if isinstance(value, np.ndarray):
        text = np.array2string(value.round(4) if value.dtype.kind == "f" else value, threshold=8, edgeitems=2)
        return f"array{value.shape} {text}"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def not_attempted(name: str) -> None:
    """Say that an exercise is still a stub (a stub is not an error: the notebook can go on)."""
    print(f"○ {name}: not attempted yet - replace `raise NotImplementedError` with your code and rerun")


def check_function(yours: Callable, reference: Callable, cases: Sequence[tuple], *, name: str,
                   atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Call both functions on each tuple of arguments and compare; raise ExerciseError on a mismatch."""
    for args in cases:
        try:
            got = yours(*args)
        except NotImplementedError:
            not_attempted(name)
            return
        want = reference(*args)
        if not _close(got, want, atol, rtol):
            shown = ", ".join(_brief(a) for a in args)
            raise ExerciseError(f"{name}: for input ({shown}) expected {_brief(want)} but got {_brief(got)}")
    print(f"✓ {name}: matches the reference on {len(cases)} case(s)")


def check_value(yours: Any, expected: Any, *, name: str, atol: float = 1e-6, rtol: float = 1e-5,
                hint: str = "") -> None:
    """Compare an answer (or a function of no arguments that computes it) with the expected value."""
    if callable(yours):
        try:
            yours = yours()
        except NotImplementedError:
            not_attempted(name)
            return
    if not _close(yours, expected, atol, rtol):
        raise ExerciseError(f"{name}: expected {_brief(expected)} but got {_brief(yours)}"
                            + (f". Hint: {hint}" if hint else ""))
    print(f"✓ {name}: correct")


def check_true(condition: bool, *, name: str, message: str) -> None:
    """Pass when ``condition`` holds; otherwise raise with ``message`` explaining what to look at."""
    if not condition:
        raise ExerciseError(f"{name}: {message}")
    print(f"✓ {name}: correct")
