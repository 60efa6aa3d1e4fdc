"""Reference answers to lesson 10's exercises (hand-over thresholds and recommendation scores).

Try the exercises before reading on: the notebook's checks tell you when your answer is right.

Lessons: 10.
"""

from __future__ import annotations

import numpy as np


def coverage_and_accuracy(confidence: np.ndarray, correct: np.ndarray, t: float) -> tuple[float, float]:
    """Share of questions with confidence ≥ t, and the accuracy of those (0.0 when none is answered)."""
    answered = np.asarray(confidence) >= t
    accuracy = float(np.asarray(correct)[answered].mean()) if answered.any() else 0.0
    return float(answered.mean()), accuracy


def precision_at_k_from_similarity(similarity: np.ndarray, catalogue_labels: np.ndarray,
                                   query_labels: np.ndarray, k: int) -> float:
    """Mean share of each query's k most similar catalogue items that carry the query's label."""
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.asarray(catalogue_labels)[top] == np.asarray(query_labels)[:, None]))
