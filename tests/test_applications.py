"""Lesson 10's tools, checked against scikit-learn where it computes the same thing."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.metrics import precision_recall_curve, precision_score, recall_score
from sklearn.neighbors import NearestNeighbors

from transfer_utils import applications as app


def test_coverage_curve_matches_sklearn_precision_recall_curve():
    rng = np.random.default_rng(0)
    confidence = np.round(rng.random(300), 2)  # ties on purpose
    correct = rng.random(300) < confidence  # more confident, more often right
    thresholds, coverage, accuracy = app.coverage_curve(confidence, correct)
    precision, recall, sk_thresholds = precision_recall_curve(correct, confidence)
    # sklearn: precision = accuracy of the answered; answered = recall · #correct / precision
    sk = {t: (p, r * correct.sum() / p / len(correct)) for p, r, t in zip(precision, recall, sk_thresholds)}
    for t, cov, acc in zip(thresholds, coverage, accuracy):
        assert acc == pytest.approx(sk[t][0]) and cov == pytest.approx(sk[t][1])
    assert coverage[-1] == 1.0 and accuracy[-1] == pytest.approx(correct.mean())


def test_pick_threshold_is_the_widest_that_reaches_the_target():
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 0, 1, 0], bool)
    assert app.pick_threshold(confidence, correct, 0.75) == 0.6  # answers 4, 3 right
    assert app.pick_threshold(confidence, correct, 1.0) == 0.8
    assert app.pick_threshold(confidence, np.zeros(5, bool), 0.5) == float("inf")


def test_adjusted_count_recovers_the_share_when_rates_are_exact():
    rng = np.random.default_rng(1)
    y = (rng.random(20000) < 0.3).astype(int)
    tpr, fpr = 0.8, 0.25
    pred = np.where(y == 1, rng.random(y.size) < tpr, rng.random(y.size) < fpr).astype(int)
    measured = app.tpr_fpr(y, pred)
    assert measured == pytest.approx((tpr, fpr), abs=0.02)
    assert pred.mean() == pytest.approx(0.3 * tpr + 0.7 * fpr, abs=0.01)  # classify-and-count is biased
    assert float(app.adjusted_count(pred.mean(), *measured)) == pytest.approx(y.mean(), abs=1e-9)
    with pytest.raises(ValueError):
        app.adjusted_count(0.5, 0.4, 0.5)


def test_stream_windows_have_the_scheduled_share():
    labels = np.r_[np.ones(500, int), np.zeros(700, int)]
    shares = [0.2, 0.5, 0.8]
    windows = app.stream_windows(labels, shares, window=100, seed=0)
    assert [labels[w].mean() for w in windows] == pytest.approx(shares)
    assert all(len(set(w)) == 100 for w in windows)
    assert not np.array_equal(windows[0], app.stream_windows(labels, shares, 100, seed=1)[0])


def test_jump_alerts_and_event_scores_match_sklearn_at_zero_tolerance():
    series = np.array([0.3, 0.31, 0.29, 0.6, 0.61, 0.3, 0.3, 0.32, 0.7, 0.31])
    alerts = app.jump_alerts(series, threshold=0.15, history=3)
    assert np.flatnonzero(alerts).tolist() == [3, 4, 8]  # window 4 still sits above the older mean
    events = np.zeros(10, bool)
    events[[3, 8, 9]] = True
    p, r = app.event_precision_recall(alerts, events)
    assert (p, r) == (precision_score(events, alerts), recall_score(events, alerts))
    assert app.event_precision_recall(alerts, events, tolerance=1) == (1.0, pytest.approx(2 / 3))


@pytest.mark.parametrize("as_sparse", [False, True])
def test_nearest_and_precision_at_k_match_sklearn_neighbours(as_sparse):
    rng = np.random.default_rng(2)
    catalogue, queries = rng.normal(size=(60, 8)), rng.normal(size=(15, 8))
    labels_c, labels_q = rng.integers(0, 3, 60), rng.integers(0, 3, 15)
    reference = NearestNeighbors(n_neighbors=5, metric="cosine").fit(catalogue).kneighbors(queries)[1]
    c, q = (sparse.csr_matrix(catalogue), sparse.csr_matrix(queries)) if as_sparse else (catalogue, queries)
    assert np.array_equal(app.nearest(q, c, 5), reference)
    expected = np.mean(labels_c[reference] == labels_q[:, None])
    assert app.precision_at_k(q, c, labels_q, labels_c, 5) == pytest.approx(expected)
