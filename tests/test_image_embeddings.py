"""Frozen ImageNet features of small images: shape, eval-mode determinism, the cache, bad input."""

import numpy as np
import pytest

from transfer_utils.models import embeddings as imf


@pytest.fixture()
def images():
    return np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)


def test_features_are_cached_and_equal_to_a_fresh_computation(images, tmp_path, monkeypatch):
    monkeypatch.setattr(imf, "cache_dir", lambda: tmp_path)
    fresh = imf.image_features(images, size=32, cache=False, progress=False)
    assert fresh.shape[0] == 3 and fresh.dtype == np.float32 and not any(tmp_path.iterdir())
    cached = imf.image_features(images, size=32, progress=False)
    assert np.allclose(cached, fresh, atol=1e-5)
    assert len(list((tmp_path / "image_features").glob("*.npy"))) == 1
    assert np.array_equal(imf.image_features(images, size=32, progress=False), cached)  # read back exactly


def test_bad_images_fail_early_with_the_fix(images):
    with pytest.raises(ValueError, match="astype"):
        imf.image_features(images.astype(np.float32))
    with pytest.raises(ValueError, match="size"):
        imf.image_features(images, size=8)
