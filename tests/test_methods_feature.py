"""Feature alignment (CORAL, subspace alignment, TCA) and MMD, checked against skada on the same data."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.metrics.pairwise import rbf_kernel

from transfer_utils.methods.feature import CORAL, TCA, SubspaceAlignment, covariance, median_gamma, mmd2
from transfer_utils.methods.instance import kmm_objective


def two_domains(n_s: int = 150, n_t: int = 120, dim: int = 6, seed: int = 0):
    """Correlated Gaussian source and a shifted, differently correlated target."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, dim)) @ rng.normal(size=(dim, dim))
    Xt = (rng.normal(size=(n_t, dim)) + 0.5) @ rng.normal(size=(dim, dim))
    return Xs, Xt


def skada_transform(adapter, Xs, Xt):
    """Fit a skada adapter on both domains; return its source and target outputs."""
    X = np.vstack([Xs, Xt])
    domain = np.r_[np.ones(len(Xs)), -np.ones(len(Xt))].astype(int)
    out = adapter.fit(X, sample_domain=domain).transform(X, sample_domain=domain, allow_source=True)
    return out[: len(Xs)], out[len(Xs):]


@pytest.mark.parametrize("reg", ["auto", 0.1, 0.0])
def test_coral_matches_skada(reg, skada):
    Xs, Xt = two_domains()
    source, _ = skada_transform(skada.CORALAdapter(reg=reg), Xs, Xt)
    # skada leaves the aligned source centred; ours adds the target mean so a model can score raw Xt.
    np.testing.assert_allclose(CORAL(reg).fit(Xs, Xt).transform(Xs) - Xt.mean(axis=0), source, atol=1e-9)


@pytest.mark.parametrize("reg", ["auto", 0.0])
def test_coral_gives_the_source_the_target_mean_and_covariance(reg):
    Xs, Xt = two_domains(seed=3)
    aligned = CORAL(reg).fit(Xs, Xt).transform(Xs)
    np.testing.assert_allclose(aligned.mean(axis=0), Xt.mean(axis=0), atol=1e-9)
    # The whitened source has the (regularised) identity covariance only when reg = 0 exactly.
    if reg == 0.0:
        np.testing.assert_allclose(np.cov(aligned.T, bias=True), np.cov(Xt.T, bias=True), atol=1e-8)
    else:
        assert np.linalg.norm(np.cov(aligned.T) - np.cov(Xt.T)) < 0.5 * np.linalg.norm(np.cov(Xs.T) - np.cov(Xt.T))
    assert np.array_equal(CORAL(reg).fit(Xs, Xt).transform(Xt, "target"), Xt)


def test_covariance_shrinkage_matches_skada_convention(skada):
    Xs, _ = two_domains()
    from skada._utils import _estimate_covariance

    for reg in ("auto", 0.3):
        np.testing.assert_allclose(covariance(Xs, reg), _estimate_covariance(Xs, shrinkage=reg), atol=1e-10)
    with pytest.raises(ValueError, match="shrinkage"):
        covariance(Xs, 2.0)


def test_subspace_alignment_matches_skada(skada):
    Xs, Xt = two_domains(200, 180, dim=10)
    theirs = skada_transform(skada.SubspaceAlignmentAdapter(n_components=4, random_state=0), Xs, Xt)
    model = SubspaceAlignment(4).fit(Xs, Xt)
    ours = model.transform(Xs, "source"), model.transform(Xt, "target")
    for mine, other in zip(ours, theirs):
        np.testing.assert_allclose(mine, other, atol=1e-9)
    np.testing.assert_allclose(model.basis_source_.T @ model.basis_source_, np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="d = 11"):
        SubspaceAlignment(11).fit(Xs, Xt)


def test_tca_equals_skada_without_the_mmd_term(skada):
    Xs, Xt = two_domains(90, 80)
    ours = TCA(d=4, mu=0.0).fit(Xs, Xt).embedding_  # source rows, then target rows
    theirs = np.vstack(skada_transform(skada.TransferComponentAnalysisAdapter(n_components=4, mu=0.0), Xs, Xt))
    signs = np.sign(np.sum(ours * theirs, axis=0))  # an eigenvector's sign is arbitrary
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-8)


def test_tca_with_mmd_term_close_to_skada_and_lowers_mmd(skada):
    Xs, Xt = two_domains(90, 80, seed=4)
    model = TCA(d=4, mu=1.0).fit(Xs, Xt)
    theirs = np.vstack(skada_transform(skada.TransferComponentAnalysisAdapter(n_components=4, mu=1.0), Xs, Xt))
    # skada takes eigh of the non-symmetric (I + mu KLK)^-1 KHK; we solve the symmetric generalised
    # problem exactly, so the subspaces agree closely but not to round-off.
    assert np.degrees(subspace_angles(model.embedding_, theirs)).max() < 10
    # Each component solves KHK w = λ (I + mu KLK) w.
    K = rbf_kernel(model.X_, gamma=model.gamma_)
    n_s, n = len(Xs), len(model.X_)
    e = np.r_[np.full(n_s, 1 / n_s), np.full(n - n_s, -1 / (n - n_s))]
    H = np.eye(n) - 1 / n
    lhs = K @ H @ K @ model.components_
    rhs = (np.eye(n) + 1.0 * K @ np.outer(e, e) @ K) @ model.components_ * model.eigenvalues_
    np.testing.assert_allclose(lhs, rhs, atol=1e-6 * np.abs(lhs).max())
    # The domains' means in the components: closer with the MMD term than without it.
    plain = TCA(d=4, mu=0.0).fit(Xs, Xt).embedding_
    gap = lambda Z: np.linalg.norm(Z[:n_s].mean(0) - Z[n_s:].mean(0)) / np.linalg.norm(Z.std(0))
    assert gap(model.embedding_) < gap(plain)
    np.testing.assert_allclose(model.transform(Xs[:5]), model.embedding_[:5], atol=1e-9)


def test_mmd_properties_and_agreement_with_the_kmm_objective():
    Xs, Xt = two_domains(60, 50)
    gamma = median_gamma(Xs, Xt)
    assert mmd2(Xs, Xs, gamma) == pytest.approx(0.0, abs=1e-12)
    assert mmd2(Xs, Xt, gamma) == pytest.approx(mmd2(Xt, Xs, gamma))
    assert mmd2(Xs, Xt, gamma) > mmd2(Xs[:30], Xs[30:], gamma)
    # The KMM objective at β = 1 is ½ n_s² MMD² minus the target-only term.
    n_s, n_t = len(Xs), len(Xt)
    target_term = 0.5 * (n_s / n_t) ** 2 * rbf_kernel(Xt, gamma=gamma).sum()
    expected = 2 * (kmm_objective(np.ones(n_s), Xs, Xt, gamma) + target_term) / n_s ** 2
    assert mmd2(Xs, Xt, gamma) == pytest.approx(expected, rel=1e-9)
    # Independent formula: the squared distance between mean feature maps, via pairwise sums.
    k = lambda A, B: np.exp(-gamma * ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)).mean()
    assert mmd2(Xs, Xt, gamma) == pytest.approx(k(Xs, Xs) + k(Xt, Xt) - 2 * k(Xs, Xt), rel=1e-9)
