"""Instance-based transfer: re-weight source examples so that, together, they look like the target.

Under *covariate shift* the labelling rule is shared, p_s(y | x) = p_t(y | x), but the inputs are not
distributed alike, p_s(x) != p_t(x). Weighting each source example by the density ratio
w(x) = p_t(x) / p_s(x) turns the average source loss into an unbiased estimate of the target loss:

    E_t[loss(x, y)] = E_s[w(x) · loss(x, y)]

The estimators below never estimate the two densities separately (hard in many dimensions); each
estimates the ratio directly, in its own way:

* :func:`classifier_weights`: a classifier that tells source from target gives p(target | x), and
  Bayes' rule turns its odds into the ratio;
* :func:`kmm_weights`: kernel mean matching picks weights that make the weighted source mean equal the
  target mean in a kernel feature space (a quadratic program, solved with Clarabel's interior-point
  method);
* :func:`kliep_weights`: KLIEP models the ratio as a sum of Gaussian bumps on target points and
  maximises the likelihood of the target sample under w(x) p_s(x).

:func:`effective_sample_size` says how many equally weighted examples a weighted sample is worth, and
:class:`TrAdaBoost` is the boosting variant for when a handful of *labelled* target examples exist.
Conventions (``gamma`` of the RBF kernel exp(-gamma ||x - x'||^2), ``B``, ``eps``, ``n_centers``) follow
skada's ``KMMReweight`` / ``KLIEPReweight`` / ``DiscriminatorReweight``; ``tests/test_methods_instance.py``
compares the weights with theirs.

Lessons: 02, 03, 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import rbf_kernel


def check_domains(Xs: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Source and target as finite 2-D float arrays with the same number of features (or a clear error)."""
    Xs, Xt = np.asarray(Xs, dtype=float), np.asarray(Xt, dtype=float)
    for name, X in (("Xs", Xs), ("Xt", Xt)):
        if X.ndim != 2 or len(X) < 2:
            raise ValueError(f"{name} must be a 2-D array (n_samples >= 2, n_features), got shape {X.shape}; "
                             "reshape a single feature with x.reshape(-1, 1)")
        if not np.isfinite(X).all():
            raise ValueError(f"{name} contains NaN or infinite values; impute or drop those rows first")
    if Xs.shape[1] != Xt.shape[1]:
        raise ValueError(f"Xs has {Xs.shape[1]} features but Xt has {Xt.shape[1]}: both domains need the same features")
    return Xs, Xt


def _gamma(gamma: float | None, X: np.ndarray) -> float:
    """The RBF kernel width: ``gamma`` itself, or scikit-learn's default 1 / n_features when None."""
    gamma = 1.0 / X.shape[1] if gamma is None else float(gamma)
    if gamma <= 0:
        raise ValueError(f"gamma = {gamma} must be positive (kernel exp(-gamma ||x - x'||^2))")
    return gamma


# --- weights from a domain classifier --------------------------------------------------------

def classifier_weights(Xs: Any, Xt: Any, classifier: Any = None, clip: float = 1e-6) -> np.ndarray:
    """Density-ratio weights p_t(x)/p_s(x) for the source rows, from a source-vs-target classifier."""
    Xs, Xt = check_domains(Xs, Xt)
    classifier = clone(classifier) if classifier is not None else LogisticRegression(max_iter=1000)
    X = np.vstack([Xs, Xt])
    domain = np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]  # 0 = source, 1 = target
    classifier.fit(X, domain)
    p_target = np.clip(classifier.predict_proba(Xs)[:, 1], clip, 1 - clip)
    # Bayes: p_t(x)/p_s(x) = [p(t|x)/p(s|x)] · [n_s/n_t]; the constant goes away when we scale to mean 1.
    weights = p_target / (1 - p_target)
    return weights / weights.mean()


# --- kernel mean matching --------------------------------------------------------------------

def kmm_weights(Xs: Any, Xt: Any, gamma: float | None = None, B: float = 1000.0,
                eps: float | None = None) -> np.ndarray:
    """Kernel mean matching: weights in [0, B] whose weighted source mean matches the target's in an RBF space.

    Solves the quadratic program of Huang et al. (2007)

        minimise   ½ βᵀ K β − κᵀ β          K_ij = k(xs_i, xs_j),  κ_i = (n_s / n_t) Σ_j k(xs_i, xt_j)
        subject to 0 <= β_i <= B  and  n_s (1 − eps) <= Σ β_i <= n_s (1 + eps)

    which is ½ n_s² · MMD²(weighted source, target) up to a constant. ``eps`` defaults to
    (√n_s − 1) / √n_s and ``gamma`` to 1 / n_features, as in skada.
    """
    import clarabel
    import scipy.sparse as sparse

    Xs, Xt = check_domains(Xs, Xt)
    n_s, n_t = len(Xs), len(Xt)
    gamma = _gamma(gamma, Xs)
    eps = (np.sqrt(n_s) - 1) / np.sqrt(n_s) if eps is None else float(eps)
    if B <= 0 or eps < 0:
        raise ValueError(f"B = {B} must be positive and eps = {eps} non-negative")
    K = rbf_kernel(Xs, Xs, gamma=gamma)
    kappa = (n_s / n_t) * rbf_kernel(Xs, Xt, gamma=gamma).sum(axis=1)
    # Clarabel's form: minimise ½ xᵀPx + qᵀx subject to Ax + s = b with s >= 0, i.e. Ax <= b.
    # The rows of A: Σβ <= n_s(1+eps), −Σβ <= −n_s(1−eps), β <= B, −β <= 0.
    ones, eye = np.ones((1, n_s)), sparse.eye(n_s)
    A = sparse.vstack([ones, -ones, eye, -eye], format="csc")
    b = np.r_[n_s * (1 + eps), -n_s * (1 - eps), np.full(n_s, float(B)), np.zeros(n_s)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    result = clarabel.DefaultSolver(sparse.triu(K, format="csc"), -kappa, A, b,
                                    [clarabel.NonnegativeConeT(len(b))], settings).solve()
    if str(result.status) not in ("Solved", "AlmostSolved"):
        raise RuntimeError(f"the KMM quadratic program was not solved (Clarabel status: {result.status})")
    return np.clip(np.asarray(result.x), 0.0, B)  # remove round-off just outside the box


def kmm_objective(weights: np.ndarray, Xs: Any, Xt: Any, gamma: float | None = None) -> float:
    """The KMM objective ½ βᵀKβ − κᵀβ for given weights (lower is better), to compare solvers."""
    Xs, Xt = check_domains(Xs, Xt)
    gamma = _gamma(gamma, Xs)
    kappa = (len(Xs) / len(Xt)) * rbf_kernel(Xs, Xt, gamma=gamma).sum(axis=1)
    return float(0.5 * weights @ rbf_kernel(Xs, Xs, gamma=gamma) @ weights - kappa @ weights)


# --- KLIEP -------------------------------------------------------------------------------------

@dataclass
class KLIEPModel:
    """A fitted KLIEP ratio w(x) = Σ_l α_l exp(−γ ||x − c_l||²); call it on any inputs."""

    alpha: np.ndarray
    centers: np.ndarray
    gamma: float

    def __call__(self, X: Any) -> np.ndarray:
        """The estimated ratio p_t(x)/p_s(x) at each row of X."""
        return rbf_kernel(np.asarray(X, dtype=float), self.centers, gamma=self.gamma) @ self.alpha

    def objective(self, Xt: Any) -> float:
        """Mean log-ratio on target rows: what KLIEP maximises."""
        return float(np.mean(np.log(self(Xt) + 1e-300)))


def _kliep_project(alpha: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Back onto the constraints: mean source weight bᵀα = 1 and α >= 0."""
    alpha = alpha + (1 - b @ alpha) * b / (b @ b)
    alpha = np.maximum(alpha, 0.0)
    return alpha / (b @ alpha)


def kliep_fit(Xs: Any, Xt: Any, gamma: float | None = None, n_centers: int = 100, random_state: int = 0,
              centers: np.ndarray | None = None, max_iter: int = 100) -> KLIEPModel:
    """Fit KLIEP (Sugiyama et al., 2008) by projected gradient ascent with a decreasing step.

    maximise  mean_j log w(xt_j)   subject to  mean_i w(xs_i) = 1,  α >= 0
    The centers are ``n_centers`` target rows drawn without replacement (or the given ``centers``).
    """
    Xs, Xt = check_domains(Xs, Xt)
    gamma = _gamma(gamma, Xs)
    if centers is None:
        if n_centers < 1:
            raise ValueError(f"n_centers = {n_centers} must be at least 1")
        rng = np.random.default_rng(random_state)
        centers = Xt[rng.choice(len(Xt), size=min(n_centers, len(Xt)), replace=False)]
    A = rbf_kernel(Xt, centers, gamma=gamma)  # bumps evaluated on target rows
    b = rbf_kernel(Xs, centers, gamma=gamma).mean(axis=0)  # their mean on source rows
    alpha = _kliep_project(np.ones(len(centers)), b)
    score = np.mean(np.log(A @ alpha + 1e-300))
    # Sugiyama's schedule: large steps first, then smaller ones while the objective still rises.
    for step in 10.0 ** np.arange(3, -4, -1):
        for _ in range(max_iter):
            candidate = _kliep_project(alpha + step * A.T @ (1 / (A @ alpha + 1e-300)), b)
            new_score = np.mean(np.log(A @ candidate + 1e-300))
            if new_score <= score:
                break
            alpha, score = candidate, new_score
    return KLIEPModel(alpha, np.asarray(centers, dtype=float), gamma)


def kliep_weights(Xs: Any, Xt: Any, gamma: float | None = None, n_centers: int = 100,
                  random_state: int = 0) -> np.ndarray:
    """KLIEP density-ratio weights for the source rows (mean 1 over the source by construction)."""
    return kliep_fit(Xs, Xt, gamma, n_centers, random_state)(Xs)


# --- how much data is left after weighting ---------------------------------------------------

def effective_sample_size(weights: Any) -> float:
    """Kish's effective sample size (Σw)² / Σw²: n for equal weights, 1 when one weight takes all."""
    w = np.asarray(weights, dtype=float).ravel()
    if w.size == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() == 0:
        raise ValueError("weights must be a non-empty array of finite, non-negative numbers, not all zero")
    return float(w.sum() ** 2 / (w ** 2).sum())


# --- TrAdaBoost ----------------------------------------------------------------------------------

class TrAdaBoost(ClassifierMixin, BaseEstimator):
    """TrAdaBoost (Dai et al., 2007): boosting over source + a few labelled target examples.

    Each round trains ``estimator`` on both sets with the current weights. A misclassified *target*
    example gains weight (as in AdaBoost); a misclassified *source* example loses weight, because a
    source example the target-focused model keeps getting wrong is probably unlike the target.
    Predictions are a vote of the second half of the rounds, each weighted by log(1/β_t).
    """

    def __init__(self, estimator: Any = None, n_estimators: int = 20):
        self.estimator = estimator
        self.n_estimators = n_estimators

    def fit(self, Xs: Any, ys: Any, Xt: Any, yt: Any) -> "TrAdaBoost":
        """Boost on labelled source rows (Xs, ys) and the few labelled target rows (Xt, yt)."""
        Xs, Xt = check_domains(Xs, Xt)
        ys, yt = np.asarray(ys), np.asarray(yt)
        if len(ys) != len(Xs) or len(yt) != len(Xt):
            raise ValueError("ys and yt must have one label per row of Xs and Xt")
        if self.n_estimators < 2:
            raise ValueError(f"n_estimators = {self.n_estimators} must be at least 2")
        base = self.estimator if self.estimator is not None else LogisticRegression(max_iter=1000)
        X, y = np.vstack([Xs, Xt]), np.r_[ys, yt]
        n_s = len(Xs)
        self.classes_ = np.unique(y)
        weights = np.ones(len(y))
        beta_source = 1 / (1 + np.sqrt(2 * np.log(n_s) / self.n_estimators))  # fixed source down-weighting
        self.estimators_, self.betas_, self.target_errors_ = [], [], []
        for _ in range(self.n_estimators):
            # Mean-1 weights: estimators whose regularisation scales with the weight sum (logistic
            # regression) then see the same data scale every round.
            model = clone(base).fit(X, y, sample_weight=weights / weights.mean())
            wrong = (model.predict(X) != y).astype(float)
            # Only the target error decides the round's vote; keep it in (0, ½) so β_t is in (0, 1).
            error = np.sum(weights[n_s:] * wrong[n_s:]) / weights[n_s:].sum()
            error = float(np.clip(error, 1e-10, 0.499))
            beta_t = error / (1 - error)
            weights[:n_s] *= beta_source ** wrong[:n_s]
            weights[n_s:] *= beta_t ** -wrong[n_s:]
            weights /= weights.max()  # rescale so weights stay within floating-point range
            self.estimators_.append(model)
            self.betas_.append(beta_t)
            self.target_errors_.append(error)
        self.source_weights_, self.target_weights_ = weights[:n_s], weights[n_s:]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Weighted vote of the second half of the rounds (the original binary rule, for any number of classes)."""
        X = np.asarray(X, dtype=float)
        half = len(self.estimators_) // 2
        votes = np.zeros((len(X), len(self.classes_)))
        for model, beta in zip(self.estimators_[half:], self.betas_[half:]):
            columns = np.searchsorted(self.classes_, model.predict(X))
            votes[np.arange(len(X)), columns] += np.log(1 / beta)
        return self.classes_[votes.argmax(axis=1)]


# --- label (prior) shift -----------------------------------------------------------------------

def adjust_to_prior(proba: Any, source_prior: Any, target_prior: Any) -> np.ndarray:
    """Bayes' correction of class probabilities for new class shares: p_t(y|x) ∝ p_s(y|x) · p_t(y)/p_s(y)."""
    proba = np.asarray(proba, dtype=float)
    ratio = np.asarray(target_prior, dtype=float) / np.asarray(source_prior, dtype=float)
    adjusted = proba * ratio  # class-level importance weights: this is instance weighting by label
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def em_target_prior(proba: Any, source_prior: Any, max_iter: int = 1000, tol: float = 1e-8) -> np.ndarray:
    """Estimate the target's class shares from unlabelled target predictions (Saerens et al., 2002).

    Alternate: correct the probabilities with the current prior (:func:`adjust_to_prior`), then set the
    prior to their mean. Needs reasonably calibrated source probabilities (logistic regression is).
    """
    proba = np.asarray(proba, dtype=float)
    source_prior = np.asarray(source_prior, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(source_prior):
        raise ValueError(f"proba must be (n, {len(source_prior)}) class probabilities, got shape {proba.shape}")
    prior = source_prior.copy()
    for _ in range(max_iter):
        new = adjust_to_prior(proba, source_prior, prior).mean(axis=0)
        if np.abs(new - prior).max() < tol:
            return new
        prior = new
    return prior
