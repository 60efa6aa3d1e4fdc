"""Feature-based transfer: change the representation so that source and target look alike.

* :func:`mmd2` measures how far apart two samples are (maximum mean discrepancy with an RBF kernel);
* :class:`CORAL` matches second-order statistics: whiten the source, re-colour it with the target
  covariance (Sun et al., 2016);
* :class:`SubspaceAlignment` maps the source's top-``d`` PCA basis onto the target's (Fernando et al.,
  2013);
* :class:`TCA` finds ``d`` kernel components in which the domains' means are close while the data's
  variance is kept (transfer component analysis, Pan et al., 2011).

Each method is a class with ``fit(Xs, Xt)`` and ``transform(X, domain)`` (the scikit-learn / ADAPT /
skada shape): ``CORAL(reg).fit(Xs, Xt).transform(Xs)`` is the re-coloured source; ``TCA`` also keeps
``embedding_``, the coordinates of the rows it was fitted on (source rows first). Hyper-parameters
follow skada's ``CORAL``, ``SubspaceAlignment`` and ``TransferComponentAnalysis``;
``tests/test_methods_feature.py`` compares the outputs with theirs.

Lessons: 02, 03.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigh
from sklearn.covariance import empirical_covariance, ledoit_wolf, shrunk_covariance
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel

from transfer_utils.methods.instance import check_domains

DOMAINS = ("source", "target")


def _check_domain(domain: str) -> str:
    """'source' or 'target' (or a clear error)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain = {domain!r}; use 'source' or 'target'")
    return domain


# --- distance between domains ------------------------------------------------------------------

def median_gamma(X: Any, Y: Any | None = None) -> float:
    """The median heuristic: gamma = 1 / median squared distance between rows (of X and Y pooled)."""
    Z = np.asarray(X, dtype=float) if Y is None else np.vstack([X, Y]).astype(float)
    squared = euclidean_distances(Z, squared=True)
    return float(1.0 / np.median(squared[np.triu_indices(len(Z), k=1)]))


def mmd2(X: Any, Y: Any, gamma: float | None = None) -> float:
    """Squared maximum mean discrepancy with an RBF kernel (biased estimate: 0 for identical samples).

    MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y), the squared distance between the two
    samples' mean embeddings. ``gamma`` defaults to the median heuristic on the pooled rows.
    """
    X, Y = check_domains(X, Y)
    gamma = median_gamma(X, Y) if gamma is None else float(gamma)
    value = (rbf_kernel(X, X, gamma=gamma).mean() + rbf_kernel(Y, Y, gamma=gamma).mean()
             - 2 * rbf_kernel(X, Y, gamma=gamma).mean())
    return max(float(value), 0.0)  # round-off can make it a hair below zero


# --- CORAL -------------------------------------------------------------------------------------

def covariance(X: np.ndarray, reg: float | str = "auto") -> np.ndarray:
    """Covariance with shrinkage: 'auto' (Ledoit-Wolf), a float in [0, 1], or 0 for none (as skada)."""
    if reg == "auto":
        # Ledoit-Wolf on standardised columns, scaled back: shrinks the correlations, keeps the variances.
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        return scale[:, None] * ledoit_wolf((X - X.mean(axis=0)) / scale)[0] * scale[None, :]
    if isinstance(reg, str) or not 0 <= reg <= 1:
        raise ValueError(f"reg = {reg!r}; use 'auto' (Ledoit-Wolf) or a shrinkage between 0 and 1")
    return shrunk_covariance(empirical_covariance(X), shrinkage=reg)


def _matrix_power(C: np.ndarray, power: float) -> np.ndarray:
    """C^power for a symmetric positive definite matrix, through its eigenvalues."""
    values, vectors = np.linalg.eigh(C)
    if values.max() <= 0:
        raise ValueError("a covariance is zero: the features do not vary")
    if values.min() <= 1e-12 * values.max() and power < 0:
        raise ValueError("a covariance is singular (more features than varied rows?): use reg='auto' or a "
                         "positive shrinkage reg")
    values = np.clip(values, 0.0, None)  # round-off can leave a zero eigenvalue slightly negative: no NaN roots
    return (vectors * values ** power) @ vectors.T


class CORAL:
    """Correlation alignment: x ↦ (x − μ_s) C_s^{-1/2} C_t^{1/2} + μ_t for source rows."""

    def __init__(self, reg: float | str = "auto"):
        self.reg = reg

    def fit(self, Xs: Any, Xt: Any) -> "CORAL":
        """Estimate both means and the whitening-then-colouring matrix."""
        Xs, Xt = check_domains(Xs, Xt)
        self.mean_source_, self.mean_target_ = Xs.mean(axis=0), Xt.mean(axis=0)
        self.matrix_ = _matrix_power(covariance(Xs, self.reg), -0.5) @ _matrix_power(covariance(Xt, self.reg), 0.5)
        return self

    def transform(self, X: Any, domain: str = "source") -> np.ndarray:
        """Source rows are moved into the target's statistics; target rows are left as they are."""
        X = np.asarray(X, dtype=float)
        if _check_domain(domain) == "target":
            return X
        return (X - self.mean_source_) @ self.matrix_ + self.mean_target_


# --- subspace alignment -------------------------------------------------------------------------

def pca_basis(X: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top-``d`` principal directions (columns), signs fixed as scikit-learn does."""
    mean = X.mean(axis=0)
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    basis = vt[:d].T
    # An eigenvector's sign is arbitrary; make each column's largest entry positive (sklearn's svd_flip).
    signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(basis.shape[1])])
    return mean, basis * signs


class SubspaceAlignment:
    """Project each domain on its own top-``d`` PCA basis, then rotate the source basis onto the target's."""

    def __init__(self, d: int = 10):
        self.d = d

    def fit(self, Xs: Any, Xt: Any) -> "SubspaceAlignment":
        """PCA bases P_s, P_t of both domains and the alignment M = P_sᵀ P_t."""
        Xs, Xt = check_domains(Xs, Xt)
        if not 1 <= self.d <= min(Xs.shape[1], len(Xs), len(Xt)):
            raise ValueError(f"d = {self.d} must be between 1 and min(n_features, n_source, n_target)")
        self.mean_source_, self.basis_source_ = pca_basis(Xs, self.d)
        self.mean_target_, self.basis_target_ = pca_basis(Xt, self.d)
        self.alignment_ = self.basis_source_.T @ self.basis_target_
        return self

    def transform(self, X: Any, domain: str = "source") -> np.ndarray:
        """d aligned coordinates: source rows (x − μ_s) P_s M, target rows (x − μ_t) P_t."""
        X = np.asarray(X, dtype=float)
        if _check_domain(domain) == "target":
            return (X - self.mean_target_) @ self.basis_target_
        return (X - self.mean_source_) @ self.basis_source_ @ self.alignment_


# --- transfer component analysis -------------------------------------------------------------

class TCA:
    """Transfer component analysis with an RBF kernel on the pooled source and target rows.

    With K the kernel matrix of all n = n_s + n_t rows, L the matrix for which tr(KLK) is the MMD of
    the domains' means, and H the centring matrix, the ``d`` components W are the leading solutions of
    the generalised symmetric eigenproblem

        K H K w = λ (I + mu · K L K) w

    (keep the data's variance, penalise the MMD between domains; skada's convention: a larger ``mu``
    aligns more; the paper's μ is 1 / mu). An input x maps to k(x, all rows) · W.
    """

    def __init__(self, d: int = 10, gamma: float | None = None, mu: float = 0.1):
        self.d, self.gamma, self.mu = d, gamma, mu

    def fit(self, Xs: Any, Xt: Any) -> "TCA":
        """Solve for the transfer components on the pooled rows."""
        Xs, Xt = check_domains(Xs, Xt)
        n_s, n_t = len(Xs), len(Xt)
        n = n_s + n_t
        if not 1 <= self.d <= n or self.mu < 0:
            raise ValueError(f"d = {self.d} must be between 1 and n_s + n_t = {n}, and mu = {self.mu} >= 0")
        self.X_ = np.vstack([Xs, Xt])
        self.gamma_ = 1.0 / Xs.shape[1] if self.gamma is None else float(self.gamma)
        K = rbf_kernel(self.X_, self.X_, gamma=self.gamma_)
        e = np.r_[np.full(n_s, 1 / n_s), np.full(n_t, -1 / n_t)]
        L = np.outer(e, e)  # eᵀKe = ‖mean φ(source) − mean φ(target)‖²
        H = np.eye(n) - np.full((n, n), 1 / n)
        KHK, KLK = K @ H @ K, K @ L @ K
        values, vectors = eigh((KHK + KHK.T) / 2, np.eye(n) + self.mu * (KLK + KLK.T) / 2,
                               subset_by_index=[n - self.d, n - 1])
        order = np.argsort(values)[::-1]
        self.eigenvalues_, self.components_ = values[order], vectors[:, order]
        self.embedding_ = K @ self.components_
        return self

    def transform(self, X: Any, domain: str = "source") -> np.ndarray:
        """Coordinates of new rows (either domain: TCA's map is shared)."""
        _check_domain(domain)
        return rbf_kernel(np.asarray(X, dtype=float), self.X_, gamma=self.gamma_) @ self.components_

