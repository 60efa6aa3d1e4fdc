"""Two real domain shifts between digit sources, for the domain-adaptation lesson.

* MNIST → scikit-learn digits. scikit-learn's digits are the UCI "optdigits": each handwritten digit
  was binarised, scaled to fit a 32×32 box (NIST's normalisation: the digit's height fills the 32
  rows, its width at most the central 20 columns), and the on-pixels were counted in 4×4 blocks,
  giving 8×8 values from 0 to 16. :func:`mnist_as_optdigits` puts MNIST through the same preprocessing, so the
  two sources differ in writers and scanning, not in an arbitrary resize (:func:`naive_downsample`
  shows how much a careless conversion costs).
* MNIST → photo-blended MNIST, the recipe of the MNIST-M set of the DANN paper: every target digit
  becomes ``|photo patch − digit|`` per colour channel, with patches cut at random from colour photos.

:func:`digits_shift` and :func:`blend_shift` return a :class:`DomainShift`: labelled source data,
target data whose labels only the "oracle" and the scoring may use, and held-out test sets.

Lessons: 03, 05.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from transfer_utils.data.datasets import Part, load_mnist_5k, load_photos, load_sklearn_digits

OPT_BOX = 32  # optdigits bitmaps are 32×32; the digit fills all 32 rows ...
OPT_WIDTH = 20  # ... and at most 20 columns (NIST's normalisation region was 20 wide × 32 high) ...
OPT_BLOCK = 4  # ... counted in non-overlapping 4×4 blocks → 8×8 values in 0..16


@dataclass
class DomainShift:
    """Source and target data of one shift; images are float32 arrays (n, channels, height, width)."""

    name: str
    source_train: Part  # labelled source examples used for training
    source_test: Part  # held-out source examples (to see whether source accuracy is kept)
    target_train: Part  # target examples: adaptation sees only x; the oracle also uses y
    target_test: Part  # held-out target examples every method is scored on

    def summary(self) -> dict[str, object]:
        """Sizes and image shape, for a one-line printout."""
        return {"shift": self.name, "source_train": len(self.source_train), "source_test": len(self.source_test),
                "target_train": len(self.target_train), "target_test": len(self.target_test),
                "image_shape": tuple(self.source_train.x.shape[1:])}


def _check_grey_images(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """Fail early unless ``images`` is a stack (n, h, w) of grey images with values 0-255."""
    images = np.asarray(images)
    if images.ndim != 3 or (size is not None and images.shape[1:] != (size, size)):
        want = f"(n, {size}, {size})" if size else "(n, height, width)"
        raise ValueError(f"expected grey images of shape {want}, got {images.shape}; pass e.g. load_mnist_5k().train.x")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError("expected pixel values in 0..255 (uint8 MNIST); got values outside that range")
    return images


def _fit_in_box(bitmap: np.ndarray, box: int = OPT_BOX, max_width: int = OPT_WIDTH) -> np.ndarray:
    """Crop a binary bitmap to its ink, scale it to ``box`` rows high (width scaled alike, at most
    ``max_width`` columns) and centre it in a ``box``×``box`` canvas."""
    from skimage.transform import resize

    rows, cols = np.flatnonzero(bitmap.any(axis=1)), np.flatnonzero(bitmap.any(axis=0))
    canvas = np.zeros((box, box), dtype=bool)
    if rows.size == 0:
        return canvas  # a blank image stays blank
    crop = bitmap[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)
    width = max(1, min(max_width, round(crop.shape[1] * box / crop.shape[0])))
    # Bilinear scaling of the 0/1 bitmap, then a threshold at one half: the result is binary again.
    scaled = resize(crop, (box, width), order=1, mode="edge", anti_aliasing=False) >= 0.5
    left = (box - width) // 2
    canvas[:, left:left + width] = scaled
    return canvas


def mnist_as_optdigits(images: np.ndarray, threshold: int = 128) -> np.ndarray:
    """MNIST 28×28 (0-255) → 8×8 on-pixel counts (0-16), the way scikit-learn's digits were made."""
    images = _check_grey_images(images)
    out = np.empty((len(images), OPT_BOX // OPT_BLOCK, OPT_BOX // OPT_BLOCK), dtype=np.uint8)
    for i, image in enumerate(images):
        bitmap = _fit_in_box(image >= threshold)
        # Count on-pixels in each 4×4 block: reshape to (8, 4, 8, 4) and sum the two block axes.
        blocks = bitmap.reshape(8, OPT_BLOCK, 8, OPT_BLOCK).sum(axis=(1, 3))
        out[i] = blocks
    return out


def naive_downsample(images: np.ndarray) -> np.ndarray:
    """MNIST 28×28 (0-255) → 8×8 values 0-16 by plain anti-aliased resizing (the careless way)."""
    from skimage.transform import resize

    images = _check_grey_images(images)
    small = resize(images.astype(np.float32) / 255.0, (len(images), 8, 8), order=1, anti_aliasing=True)
    return np.round(small * 16).clip(0, 16).astype(np.uint8)


def blend_with_photos(images: np.ndarray, seed: int = 0, photos: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Grey digits (n, h, w) → colour digits (n, h, w, 3): ``|random photo patch − digit|`` per channel."""
    images = _check_grey_images(images)
    photos = photos if photos is not None else load_photos()
    pictures = [np.asarray(p, dtype=np.int16) for p in photos.values()]
    height, width = images.shape[1:]
    if not pictures or any(p.ndim != 3 or p.shape[0] < height or p.shape[1] < width for p in pictures):
        raise ValueError(f"every photo must be a colour image (H, W, 3) of at least {height}×{width} pixels")
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), height, width, 3), dtype=np.uint8)
    for i, digit in enumerate(images):
        photo = pictures[rng.integers(len(pictures))]
        top = rng.integers(photo.shape[0] - height + 1)
        left = rng.integers(photo.shape[1] - width + 1)
        patch = photo[top:top + height, left:left + width]
        # Where the digit has ink the photo's colours are inverted; elsewhere the photo shows through.
        out[i] = np.abs(patch - digit.astype(np.int16)[..., None])
    return out


def as_grey_input(images: np.ndarray, max_value: float) -> np.ndarray:
    """Grey images (n, h, w) with values 0..max_value → float32 network input (n, 1, h, w) in [−1, 1]."""
    return (np.asarray(images, dtype=np.float32) / max_value * 2.0 - 1.0)[:, None]


def as_colour_input(images: np.ndarray) -> np.ndarray:
    """Colour (n, h, w, 3) or grey (n, h, w, repeated ×3) uint8 images → float32 (n, 3, h, w) in [−1, 1]."""
    images = np.asarray(images, dtype=np.float32) / 255.0 * 2.0 - 1.0  # centred: helps a network without BatchNorm
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


@lru_cache(maxsize=None)
def digits_shift() -> DomainShift:
    """MNIST (converted like optdigits) → scikit-learn digits; inputs (n, 1, 8, 8) in [−1, 1]."""
    mnist, digits = load_mnist_5k(), load_sklearn_digits()
    to_input = lambda part, convert: Part(as_grey_input(convert(part.x), 16.0), part.y)  # noqa: E731
    same = lambda x: x  # noqa: E731
    return DomainShift("MNIST → scikit-learn digits",
                       source_train=to_input(mnist.train, mnist_as_optdigits),
                       source_test=to_input(mnist.test, mnist_as_optdigits),
                       target_train=to_input(digits.train, same),
                       target_test=to_input(digits.test, same))


@lru_cache(maxsize=None)
def blend_shift(n_source: int = 2500, blend_seed: int = 0) -> DomainShift:
    """MNIST → photo-blended MNIST; inputs (n, 3, 28, 28) in [−1, 1]; source and target digits are disjoint.

    Source: the first ``n_source`` MNIST training digits (grey, repeated on 3 channels). Target
    train: the other training digits and the validation digits, blended. Target test: the MNIST test
    digits, blended. Source test: the same test digits, grey. ``blend_seed`` fixes the photo patches.
    """
    mnist = load_mnist_5k()
    if not 100 <= n_source < len(mnist.train) - 100:
        raise ValueError(f"n_source={n_source} must leave at least 100 of the {len(mnist.train)} MNIST "
                         "training digits for the target")
    source = mnist.train.take(np.arange(n_source))
    rest = mnist.train.take(np.arange(n_source, len(mnist.train)))
    target_x = np.concatenate([rest.x, mnist.val.x])
    target_y = np.concatenate([rest.y, mnist.val.y])
    photos = load_photos()
    return DomainShift("MNIST → photo-blended MNIST",
                       source_train=Part(as_colour_input(source.x), source.y),
                       source_test=Part(as_colour_input(mnist.test.x), mnist.test.y),
                       target_train=Part(as_colour_input(blend_with_photos(target_x, blend_seed, photos)), target_y),
                       target_test=Part(as_colour_input(blend_with_photos(mnist.test.x, blend_seed + 1, photos)),
                                        mnist.test.y))
