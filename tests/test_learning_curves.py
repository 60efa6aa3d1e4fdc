"""Learning-curve helpers: shared labelled subsets, one row per run, gains between method groups."""

import numpy as np
import pytest
import torch

from transfer_utils import learning_curves as lc
from transfer_utils.data.datasets import Part


@pytest.fixture
def pool():
    y = np.array([0] * 40 + [1] * 60)
    return Part([f"text {i}" for i in range(100)], y)


def test_subsets_are_stratified_seeded_and_shared(pool):
    subsets = lc.labelled_subsets(pool, [10, 50], [0, 1])
    assert set(subsets) == {(10, 0), (10, 1), (50, 0), (50, 1)}
    assert len(subsets[(10, 0)]) == 10 and subsets[(50, 1)].y.sum() == 30
    again = lc.labelled_subsets(pool, [10], [0])
    assert again[(10, 0)].x == subsets[(10, 0)].x and subsets[(10, 0)].x != subsets[(10, 1)].x


def test_learning_curve_runs_every_method_on_the_same_subsets(pool):
    seen = {}

    def method(name):
        def run(labelled, seed):
            seen.setdefault((len(labelled), seed), set()).add(tuple(labelled.x))
            return {"a": 0.6, "b": 0.7}[name] + len(labelled) / 1000
        return run

    subsets = lc.labelled_subsets(pool, [10, 50], [0, 1, 2])
    rows = lc.learning_curve({"a": method("a"), "b": method("b")}, subsets, progress=False)
    assert len(rows) == 2 * 3 * 2 and {r["method"] for r in rows} == {"a", "b"}
    assert all(len(texts) == 1 for texts in seen.values())  # both methods saw identical data
    assert lc.mean_accuracy(rows, 50, "b") == pytest.approx(0.75)
    assert lc.means_at(rows, 10) == pytest.approx({"a": 0.61, "b": 0.71})


def test_gain_compares_the_best_of_each_group():
    rows = [{"n": 64, "method": m, "seed": s, "accuracy": a}
            for m, accs in {"frozen": [0.64, 0.66], "tuned": [0.58, 0.60], "tfidf": [0.60, 0.62],
                            "scratch": [0.58, 0.58]}.items() for s, a in enumerate(accs)]
    assert lc.gain_at(rows, 64, ["frozen", "tuned"], ["tfidf", "scratch"]) == pytest.approx(0.65 - 0.61)
    # a method that was not run at this size is skipped; a group with none at all is an error
    assert lc.gain_at(rows, 64, ["frozen", "missing"], ["tfidf"]) == pytest.approx(0.04)
    with pytest.raises(KeyError, match="none of the transfer methods"):
        lc.gain_at(rows, 64, ["missing"], ["tfidf"])
    with pytest.raises(KeyError, match="no rows"):
        lc.mean_accuracy(rows, 256, "frozen")


@pytest.mark.parametrize("n, expected", [(16, 12), (64, 12), (256, 32), (1024, 48)])
def test_training_steps_clip_epochs_to_a_range(n, expected):
    assert lc.training_steps(n, batch_size=16, epochs=2, min_steps=12, max_steps=48) == expected


def test_bag_of_embeddings_learns_a_word_rule_from_scratch():
    """Label 1 exactly when word piece 7 occurs: a from-scratch bag of embeddings must learn it."""
    rng = np.random.default_rng(0)
    texts = [list(rng.integers(10, 50, size=rng.integers(3, 9))) for _ in range(400)]
    labels = rng.integers(0, 2, size=400)
    texts = [t + [7] if y else t for t, y in zip(texts, labels)]
    model = lc.train_bag_of_embeddings(texts[:300], labels[:300], vocab_size=50, lr=3e-2, epochs=20, seed=0)
    accuracy = np.mean(lc.bag_predict(model, texts[300:]) == labels[300:])
    assert accuracy > 0.95
    # the same seed gives the same model (reruns are exact)
    again = lc.train_bag_of_embeddings(texts[:300], labels[:300], vocab_size=50, lr=3e-2, epochs=20, seed=0)
    assert torch.equal(again.embedding.weight, model.embedding.weight)


def test_bag_of_embeddings_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="as many token lists as labels"):
        lc.train_bag_of_embeddings([[1, 2]], np.array([0, 1]), vocab_size=5, lr=0.1, epochs=1, seed=0)
