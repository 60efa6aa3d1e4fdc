"""Tools for the three applications of lesson 10: hand-over thresholds, share monitoring, recommendation.

    coverage_curve / pick_threshold   answer automatically above a confidence, hand the rest to a person
    tpr_fpr / adjusted_count          classify-and-count and its correction with measured error rates
    stream_windows / jump_alerts      a stream with a known share schedule, and an alert when the share jumps
    event_precision_recall            how many alerts were right, how many jumps were caught
    nearest / precision_at_k          content-based recommendation by cosine similarity, scored by label

Lessons: 10.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.preprocessing import normalize


# --- customer service: answer or hand over --------------------------------------------------------

def coverage_curve(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct confidence t (high to low): the share answered (confidence ≥ t) and their accuracy."""
    confidence = np.asarray(confidence, dtype=float).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if confidence.shape != correct.shape or confidence.size == 0:
        raise ValueError("confidence and correct must be non-empty and of the same length")
    order = np.argsort(-confidence, kind="stable")
    conf, hits = confidence[order], np.cumsum(correct[order])
    last = np.r_[np.flatnonzero(np.diff(conf) != 0), conf.size - 1]  # the last row of each distinct value
    answered = last + 1
    return conf[last], answered / conf.size, hits[last] / answered


def pick_threshold(confidence: Any, correct: Any, target_accuracy: float) -> float:
    """The lowest confidence threshold whose answered accuracy reaches ``target_accuracy`` (inf: answer none)."""
    thresholds, _, accuracy = coverage_curve(confidence, correct)
    good = np.flatnonzero(accuracy >= target_accuracy)
    return float(thresholds[good[-1]]) if good.size else float("inf")


# --- sentiment monitoring: estimate a share, correct it, alert on jumps --------------------------

def tpr_fpr(y_true: Any, y_pred: Any, positive: int = 1) -> tuple[float, float]:
    """True-positive and false-positive rates of the ``positive`` class."""
    y_true, y_pred = np.asarray(y_true) == positive, np.asarray(y_pred) == positive
    if y_true.all() or not y_true.any():
        raise ValueError("tpr_fpr needs examples of both the positive and the other classes")
    return float(y_pred[y_true].mean()), float(y_pred[~y_true].mean())


def adjusted_count(predicted_share: Any, tpr: float, fpr: float) -> np.ndarray:
    """Adjusted classify-and-count (Forman 2008): (share − FPR) / (TPR − FPR), clipped to [0, 1]."""
    if tpr - fpr <= 1e-6:
        raise ValueError(f"the classifier must beat chance on the positive class (TPR {tpr:.3f}, FPR {fpr:.3f})")
    return np.clip((np.asarray(predicted_share, dtype=float) - fpr) / (tpr - fpr), 0.0, 1.0)


def stream_windows(labels: Any, shares: Sequence[float], window: int, seed: int,
                   positive: int = 1) -> list[np.ndarray]:
    """Row indices of one window per share: ``round(share · window)`` positives, the rest others, drawn anew."""
    labels = np.asarray(labels)
    pools = np.flatnonzero(labels == positive), np.flatnonzero(labels != positive)
    rng = np.random.default_rng(seed)
    windows = []
    for share in shares:
        n_pos = int(round(float(share) * window))
        if not 0 <= n_pos <= min(window, len(pools[0])) or window - n_pos > len(pools[1]):
            raise ValueError(f"cannot draw a window of {window} with share {share} from these labels")
        rows = np.r_[rng.choice(pools[0], n_pos, replace=False), rng.choice(pools[1], window - n_pos, replace=False)]
        windows.append(rng.permutation(rows))
    return windows


def jump_alerts(series: Any, threshold: float, history: int = 3) -> np.ndarray:
    """Alert at t when ``series[t]`` exceeds the mean of the ``history`` windows before it by more than ``threshold``."""
    series = np.asarray(series, dtype=float)
    alerts = np.zeros(series.size, dtype=bool)
    for t in range(1, series.size):
        alerts[t] = series[t] - series[max(0, t - history):t].mean() > threshold
    return alerts


def event_precision_recall(alerts: Any, events: Any, tolerance: int = 0) -> tuple[float, float]:
    """Precision (alerts with an event at most ``tolerance`` windows before) and recall (events alerted in time)."""
    alerts, events = np.flatnonzero(np.asarray(alerts, bool)), np.flatnonzero(np.asarray(events, bool))
    right = sum(any(0 <= a - e <= tolerance for e in events) for a in alerts)
    caught = sum(any(0 <= a - e <= tolerance for a in alerts) for e in events)
    precision = right / len(alerts) if len(alerts) else 0.0
    recall = caught / len(events) if len(events) else 0.0
    return float(precision), float(recall)


# --- recommendation: nearest items by cosine similarity -------------------------------------------

def nearest(queries: Any, catalogue: Any, k: int) -> np.ndarray:
    """Indices (n_queries, k) of the ``k`` catalogue rows most cosine-similar to each query (dense or sparse)."""
    scores = normalize(queries) @ normalize(catalogue).T
    scores = scores.toarray() if hasattr(scores, "toarray") else np.asarray(scores)
    if not 0 < k <= scores.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the catalogue size")
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def precision_at_k(queries: Any, catalogue: Any, query_labels: Any, catalogue_labels: Any, k: int) -> float:
    """Mean share of each query's ``k`` nearest catalogue items that carry the query's label."""
    neighbours = nearest(queries, catalogue, k)
    same = np.asarray(catalogue_labels)[neighbours] == np.asarray(query_labels)[:, None]
    return float(same.mean())
