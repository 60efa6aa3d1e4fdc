"""Datasets: sizes, class balance and fixed, disjoint splits."""

import numpy as np
import pytest

from transfer_utils.data import datasets
from transfer_utils.data.datasets import Part


def _total(splits):
    return len(splits.train) + len(splits.val) + len(splits.test)


def test_rotten_tomatoes_snippets():
    rt = datasets.load_rotten_tomatoes()
    assert _total(rt) == 12808 and len(rt.train) == 8965
    fresh = np.concatenate([rt.train.y, rt.val.y, rt.test.y]).mean()
    assert fresh == pytest.approx(0.578, abs=0.001)
    assert rt.classes == ["rotten", "fresh"] and isinstance(rt.train.x[0], str)


def test_text_datasets_sizes():
    tweets = datasets.load_tweets()
    assert _total(tweets) == 23140
    assert np.concatenate([tweets.train.y, tweets.test.y]).mean() == pytest.approx(0.30, abs=0.01)
    assert _total(datasets.load_tweets(("negative", "neutral", "positive"))) == 38158
    bbc = datasets.load_bbc_news()
    assert _total(bbc) == 2225
    assert bbc.classes == ["business", "entertainment", "politics", "sports", "tech"]
    assert "Â£" not in " ".join(bbc.train.x[:200])  # UTF-8 read correctly


def test_image_datasets_shapes_and_ranges():
    mnist = datasets.load_mnist_5k()
    assert _total(mnist) == 5000 and mnist.train.x.shape[1:] == (28, 28) and mnist.train.x.dtype == np.uint8
    digits = datasets.load_sklearn_digits()
    assert _total(digits) == 1797 and digits.train.x.shape[1:] == (8, 8) and digits.train.x.max() == 16
    fashion = datasets.load_fashion_mnist()
    assert (len(fashion.train), len(fashion.val), len(fashion.test)) == (54000, 6000, 10000)
    assert fashion.classes[9] == "Ankle boot"
    photos = datasets.load_photos(["chelsea", "camera"])
    assert photos["chelsea"].shape == (300, 451, 3) and photos["camera"].shape == (512, 512, 3)
    assert _total(datasets.load_faces()) == 200


def test_split_is_fixed_stratified_and_disjoint():
    x = np.arange(1000)
    y = (x % 3 == 0).astype(int)
    first = datasets.split_fixed(x, y, "toy", ["a", "b"])
    second = datasets.split_fixed(x, y, "toy", ["a", "b"])
    assert np.array_equal(first.test.x, second.test.x)
    # ... because of the seed: another split_seed gives another test set (so the line above can fail).
    assert not np.array_equal(first.test.x, datasets.split_fixed(x, y, "toy", ["a", "b"], split_seed=1).test.x)
    parts = [set(first.train.x), set(first.val.x), set(first.test.x)]
    assert sum(map(len, parts)) == 1000 and len(set.union(*parts)) == 1000
    assert len(first.test) == 200 and abs(len(first.train) - 700) <= 1  # 70 / 10 / 20, up to rounding
    assert first.test.y.mean() == pytest.approx(y.mean(), abs=0.01)


def test_sampling_helpers():
    part = Part(list("abcdefghij" * 3), np.array([0, 1, 2] * 10))
    few = datasets.sample_per_class(part, 4, seed=0)
    assert np.bincount(few.y).tolist() == [4, 4, 4]
    assert datasets.sample_per_class(part, 4, seed=0).x == few.x
    assert datasets.sample_per_class(part, 4, seed=1).x != few.x  # the seed decides the sample
    with pytest.raises(ValueError, match="fewer than k=11"):
        datasets.sample_per_class(part, 11, seed=0)
    some = datasets.sample_n(part, 6, seed=1)
    assert np.bincount(some.y).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="between the number of classes"):
        datasets.sample_n(part, 2, seed=0)
