"""Reference answers to lesson 02's exercises: density ratios from a domain classifier, weighted accuracy.

Exercise 1 (effective sample size) is checked against
``transfer_utils.methods.instance.effective_sample_size``, the function the lesson uses.

Lessons: 02.
"""

from __future__ import annotations

import numpy as np


def ratio_from_classifier(p: float, n_s: int, n_t: int) -> float:
    """Density ratio p_t(x)/p_s(x) from p = P(target | x) of a classifier fitted on n_s source, n_t target rows."""
    return (p / n_t) / ((1 - p) / n_s)


def weighted_accuracy(predicted: np.ndarray, actual: np.ndarray, weights: np.ndarray) -> float:
    """Accuracy in which each row counts with its weight: Σ w·[right] / Σ w."""
    right = np.asarray(predicted) == np.asarray(actual)
    return float(np.average(right, weights=np.asarray(weights, dtype=float)))
