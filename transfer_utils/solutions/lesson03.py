"""Reference answers to lesson 03's exercises (feature-based transfer): linear-kernel MMD and CORAL by hand.

The checks in the notebook compare a learner's function with these; try the exercise before reading them.

Lessons: 03.
"""

from __future__ import annotations

import numpy as np

from transfer_utils.methods.feature import CORAL


def linear_mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    """MMD² with the linear kernel k(x, y) = x·y, computed from its kernel form (the three kernel-block means)."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    return float((X @ X.T).mean() + (Y @ Y.T).mean() - 2 * (X @ Y.T).mean())


def coral_without_shrinkage(Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
    """Source rows moved into the target's statistics by CORAL with no covariance shrinkage (reg = 0)."""
    return CORAL(reg=0.0).fit(Xs, Xt).transform(Xs)
