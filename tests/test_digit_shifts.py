"""The digit domain shifts: MNIST converted like scikit-learn's digits, and MNIST blended with photos."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from transfer_utils.data import datasets
from transfer_utils.data.digit_shifts import (as_colour_input, blend_shift, blend_with_photos, digits_shift, mnist_as_optdigits, naive_downsample)


@pytest.fixture(scope="module")
def mnist():
    return datasets.load_mnist_5k()


@pytest.fixture(scope="module")
def sk_digits():
    return datasets.load_sklearn_digits()


def test_optdigits_conversion_has_the_format_of_sklearn_digits(mnist, sk_digits):
    converted = mnist_as_optdigits(mnist.train.x[:1000])
    assert converted.shape == (1000, 8, 8) and converted.dtype == np.uint8
    assert converted.min() == 0 and converted.max() == 16  # on-pixel counts of 4×4 blocks
    # Known properties of scikit-learn's digits: the digit's height fills all 8 rows; the outer
    # columns are almost empty (the width was at most 20 of the 32 columns).
    for images in (converted, sk_digits.train.x):
        rows_inked = (images.sum(axis=2) > 0).mean(axis=0)
        cols_inked = (images.sum(axis=1) > 0).mean(axis=0)
        assert rows_inked.min() > 0.95
        assert cols_inked[0] < 0.05 and cols_inked[3:5].min() > 0.95


def test_optdigits_conversion_makes_a_mnist_model_work_on_sklearn_digits(mnist, sk_digits):
    flat = lambda images: images.reshape(len(images), -1) / 16.0  # noqa: E731
    target_x, target_y = flat(sk_digits.test.x), sk_digits.test.y
    scores = {}
    for name, convert in (("optdigits", mnist_as_optdigits), ("naive", naive_downsample)):
        model = LogisticRegression(max_iter=1000).fit(flat(convert(mnist.train.x[:2000])), mnist.train.y[:2000])
        scores[name] = model.score(target_x, target_y)
    # Measured: about 0.7 with the right preprocessing, below 0.3 with a plain resize.
    assert scores["optdigits"] > 0.6 and scores["naive"] < 0.4


def test_conversion_of_one_hand_made_digit():
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 12:16] = 255  # a vertical bar 20 high, 4 wide → 32 high, 6.4 ≈ 6 wide, centred
    (blocks,) = mnist_as_optdigits(image[None])
    assert blocks.sum() == 32 * 6 and (blocks[:, 3] == 12).all() and (blocks[:, 4] == 12).all()
    assert mnist_as_optdigits(np.zeros((1, 28, 28), np.uint8)).sum() == 0  # blank stays blank


def test_blend_is_deterministic_for_a_seed_and_follows_the_recipe(mnist):
    digits = mnist.test.x[:50]
    first, again, other = (blend_with_photos(digits, seed=s) for s in (3, 3, 4))
    assert first.shape == (50, 28, 28, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    # |patch − digit| per channel: with a flat-coloured "photo" the result is known exactly.
    flat = {"flat": np.full((40, 40, 3), [10, 100, 200], dtype=np.uint8)}
    blended = blend_with_photos(digits, seed=0, photos=flat).astype(int)
    expected = np.abs(np.array([10, 100, 200]) - digits.astype(int)[..., None])
    assert np.array_equal(blended, expected)


def test_bad_inputs_fail_early_with_the_fix(mnist):
    with pytest.raises(ValueError, match="grey images"):
        mnist_as_optdigits(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="0..255"):
        blend_with_photos(np.full((2, 28, 28), 300.0))
    with pytest.raises(ValueError, match="at least 28×28"):
        blend_with_photos(mnist.test.x[:2], photos={"tiny": np.zeros((10, 10, 3), np.uint8)})
    with pytest.raises(ValueError, match="n_source"):
        blend_shift(n_source=3490)


def test_shifts_have_disjoint_parts_of_the_right_shape(mnist, sk_digits):
    blend = blend_shift()
    assert blend.source_train.x.shape == (2500, 3, 28, 28) and blend.target_test.x.shape == (1000, 3, 28, 28)
    assert len(blend.source_train) + len(blend.target_train) == len(mnist.train) + len(mnist.val)
    assert blend.source_train.x.dtype == np.float32
    assert -1 <= blend.target_train.x.min() <= blend.target_train.x.max() <= 1
    # Source test and target test hold the same digits, grey and blended.
    assert np.array_equal(blend.source_test.y, blend.target_test.y)
    assert np.array_equal(blend.source_test.x, as_colour_input(mnist.test.x))
    digits = digits_shift()
    assert digits.source_train.x.shape[1:] == digits.target_test.x.shape[1:] == (1, 8, 8)
    assert len(digits.target_test) == len(sk_digits.test)
    assert digits.target_train.x.min() == -1.0 and digits.target_train.x.max() == 1.0
