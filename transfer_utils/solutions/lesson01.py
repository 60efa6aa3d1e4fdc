"""Reference answers to lesson 01's exercises: the kinds of transfer, the λ of plain pooling, a choice on validation.

Exercise 2 (the gain of transfer) is checked against ``transfer_utils.learning_curves.gain_at``, the
function the lesson reports its gains with.

Lessons: 01.
"""

from __future__ import annotations

from typing import Sequence


def transfer_kinds() -> list[str]:
    """The kind of transfer of the four examples (a) to (d) of exercise 1, in order."""
    return ["feature", "instance", "parameter", "relation"]


def pooling_lambda(n_source: int, n_target: int) -> float:
    """The λ of plain pooling (every example weighs 1): n_target / n_source."""
    return n_target / n_source


def pick_on_validation(lambdas: Sequence[float], val_accuracy: Sequence[float],
                       test_accuracy: Sequence[float]) -> tuple[float, float]:
    """The λ with the best validation accuracy (the first on a tie) and that λ's test accuracy."""
    best = max(range(len(lambdas)), key=lambda i: (val_accuracy[i], -i))
    return lambdas[best], test_accuracy[best]
