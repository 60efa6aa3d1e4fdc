"""Covariate-shift data for the instance-based lesson: a biased selection of real rows, and a 1-D toy.

The protocol of the kernel-mean-matching paper (Huang et al., 2007): split a real dataset at random
into a *pool* and a *target* half; keep each pool row as a (labelled) source example with a
probability that depends on its inputs only. The labelling rule p(y | x) is the same in both domains
(covariate shift) and the true density ratio is known: p_t(x) / p_s(x) ∝ 1 / P(keep | x).

Lessons: 02.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def selection_probability(z: np.ndarray, sharpness: float = 4.0, floor: float = 0.02) -> np.ndarray:
    """P(keep | x) = floor + (1 − 2·floor) · sigmoid(−sharpness · z): rows with small z are kept more often."""
    if sharpness < 0 or not 0 < floor < 0.5:
        raise ValueError(f"need sharpness >= 0 and 0 < floor < 0.5, got {sharpness} and {floor}")
    return floor + (1 - 2 * floor) / (1 + np.exp(sharpness * np.asarray(z, dtype=float)))


@dataclass
class BiasedSplit:
    """Row indices of a biased source sample and an unbiased target half, with the keep probabilities."""

    source: np.ndarray
    target: np.ndarray
    keep_probability: np.ndarray  # P(keep | x) of each source row: true ratio ∝ 1 / this

    def true_weights(self) -> np.ndarray:
        """The exact importance weights of the source rows, scaled to mean 1."""
        w = 1 / self.keep_probability
        return w / w.mean()


def biased_split(z: np.ndarray, seed: int, sharpness: float = 4.0, floor: float = 0.02) -> BiasedSplit:
    """Random halves (pool, target); pool rows kept as source with :func:`selection_probability` of ``z``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(z))
    target, pool = np.sort(order[: len(z) // 2]), np.sort(order[len(z) // 2:])
    p = selection_probability(z[pool], sharpness, floor)
    keep = rng.random(len(pool)) < p
    return BiasedSplit(pool[keep], target, p[keep])


def digits_pca(n_components: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits as ``n_components`` standardised PCA coordinates, and labels."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from transfer_utils.data.assets import asset_path

    asset_path("sklearn_digits")  # a clear error if scikit-learn's data file is missing
    digits = load_digits()
    # PCA uses no labels, so fitting it on every row (both domains) is fair: it only fixes the features.
    coordinates = PCA(n_components, random_state=0).fit_transform(digits.data)
    return StandardScaler().fit_transform(coordinates), digits.target


def toy_1d(n_source: int = 300, n_target: int = 300, seed: int = 0):
    """A 1-D covariate shift for intuition: source N(0, 1), target N(1.5, 0.5²), p(y=1|x) = sigmoid(3(x² − 1)).

    Returns (xs, ys, xt, yt, ratio) with ``ratio`` the true p_t/p_s at the source points.
    """
    rng = np.random.default_rng(seed)
    xs = rng.normal(0.0, 1.0, n_source)
    xt = rng.normal(1.5, 0.5, n_target)
    label = lambda x: (rng.random(len(x)) < 1 / (1 + np.exp(-3 * (x ** 2 - 1)))).astype(int)  # noqa: E731
    ys, yt = label(xs), label(xt)
    ratio = (np.exp(-((xs - 1.5) ** 2) / (2 * 0.25)) / 0.5) / np.exp(-(xs ** 2) / 2)
    return xs, ys, xt, yt, ratio
