"""Evidence helpers: seed spreads, paired comparisons that can say "no clear difference", constant baselines."""

import numpy as np
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score

from transfer_utils.core import evidence


def test_summary_uses_the_sample_standard_deviation():
    assert evidence.summarize([0.70, 0.72, 0.74]) == "0.720 ± 0.020 (3 seeds)"
    assert evidence.spread([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="finite"):
        evidence.spread([0.5, float("nan")])


def test_a_consistent_gap_is_clear_and_a_noisy_one_is_not():
    clear = evidence.compare([0.80, 0.82, 0.81], [0.70, 0.71, 0.72], "transfer", "scratch")
    assert clear.clear and clear.winner == "transfer"
    assert clear.sentence().startswith("Clear difference in accuracy, in favour of transfer over scratch")
    noisy = evidence.compare([0.80, 0.60, 0.75], [0.70, 0.72, 0.71], "transfer", "scratch")
    assert not noisy.clear and noisy.winner is None
    assert noisy.sentence().startswith("No clear difference")
    flipped = evidence.compare([0.60, 0.61, 0.62], [0.70, 0.71, 0.73], "transfer", "scratch")
    assert flipped.winner == "scratch" and "in favour of scratch over transfer" in flipped.sentence()


def test_too_few_seeds_never_make_a_winner():
    two = evidence.compare([0.9, 0.91], [0.5, 0.5], "a", "b")
    assert not two.enough_seeds and two.winner is None and two.sentence().startswith("Too few seeds")


def test_the_clear_rule_agrees_with_a_paired_t_statistic():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.normal(0.75, 0.02, 5)
        b = a - rng.normal(0.01, 0.02, 5)
        result = evidence.compare(a, b)
        t = stats.ttest_rel(a, b).statistic
        assert result.clear == (abs(t) > 2.0)


def test_pairs_must_line_up():
    with pytest.raises(ValueError, match="pair them by seed"):
        evidence.compare([0.1, 0.2, 0.3], [0.1, 0.2])


def test_constant_baselines_match_scikit_learns_dummy_classifier():
    y = np.array([1] * 58 + [0] * 42)
    X = np.zeros((len(y), 1))
    majority = DummyClassifier(strategy="most_frequent").fit(X, y).predict(X)
    assert evidence.constant_baseline(y) == pytest.approx(accuracy_score(y, majority))
    always_fresh = np.ones_like(y)
    assert evidence.constant_baseline(y, "f1", positive=1) == pytest.approx(f1_score(y, always_fresh))
    best_macro = max(f1_score(y, np.full_like(y, c), average="macro") for c in (0, 1))
    assert evidence.constant_baseline(y, "macro_f1") == pytest.approx(best_macro)


def test_claims_state_the_true_branch_and_record_it():
    claims = evidence.Claims()
    assert claims.claim("helps", 0.8 > 0.7, "it helps", "it does not help") == "it helps"
    assert claims.claim("hurts", False, "it hurts", "it does not hurt") == "it does not hurt"
    claims.comparison("vs", evidence.compare([0.8, 0.6, 0.75], [0.7, 0.72, 0.71], "x", "y"))
    records = claims.as_metrics()["claims"]
    assert [r["holds"] for r in records] == [True, False, False]
    assert "- it does not hurt" in claims.markdown()
