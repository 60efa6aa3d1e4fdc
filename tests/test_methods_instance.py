"""Instance weights and TrAdaBoost: checked against skada on the same data and against known ratios."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from transfer_utils.methods.instance import (KLIEPModel, TrAdaBoost, classifier_weights, effective_sample_size, kliep_fit, kliep_weights, kmm_objective, kmm_weights)

MEAN_S, MEAN_T, SCALE_T = np.zeros(2), np.array([0.8, 0.4]), 0.6


def gaussian_shift(n_s: int = 200, n_t: int = 150, seed: int = 0):
    """Source N(0, I), target N(m, 0.36 I) in 2-D, with the true density ratio p_t/p_s."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, 2))
    Xt = MEAN_T + SCALE_T * rng.normal(size=(n_t, 2))
    ratio = multivariate_normal(MEAN_T, SCALE_T ** 2).pdf(Xs) / multivariate_normal(MEAN_S, 1).pdf(Xs)
    return Xs, Xt, ratio


def skada_weights(adapter, Xs, Xt):
    """Fit a skada reweighting adapter and return the source rows' weights."""
    X = np.vstack([Xs, Xt])
    domain = np.r_[np.ones(len(Xs)), -np.ones(len(Xt))].astype(int)  # skada: source > 0, target < 0
    adapter.fit(X, sample_domain=domain)
    return adapter.compute_weights(X, sample_domain=domain)[: len(Xs)]


def test_classifier_weights_follow_the_true_ratio_and_skada_returns_their_inverse(skada):
    Xs, Xt, ratio = gaussian_shift()
    # The log-ratio of two Gaussians is quadratic in x: a logistic regression on degree-2 features
    # is the well-specified domain classifier here.
    quadratic = make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=5000))
    ours = classifier_weights(Xs, Xt, quadratic)
    assert ours.mean() == pytest.approx(1.0)
    assert np.corrcoef(ours, ratio)[0, 1] > 0.9
    theirs = skada_weights(skada.DiscriminatorReweightAdapter(quadratic), Xs, Xt)
    # skada 0.6 computes (1 − p_target) / p_target, i.e. p_s/p_t: the inverse of the ratio it documents.
    inverse = (1 / theirs) / np.mean(1 / theirs)
    np.testing.assert_allclose(ours, inverse, rtol=1e-6, atol=1e-5)  # the clip of p differs (1e-6 vs 2e-16)
    assert np.corrcoef(theirs, ratio)[0, 1] < 0.5


@pytest.mark.parametrize("B", [5.0, 1000.0])
def test_kmm_solves_the_same_program_as_skada_at_least_as_well(B, skada):
    Xs, Xt, ratio = gaussian_shift(100, 80)
    gamma = 0.5
    ours = kmm_weights(Xs, Xt, gamma=gamma, B=B)
    eps = (np.sqrt(len(Xs)) - 1) / np.sqrt(len(Xs))
    assert ours.min() >= 0 and ours.max() <= B and abs(ours.mean() - 1) <= eps + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slsqp = skada_weights(skada.KMMReweightAdapter(gamma=gamma, B=B, solver="scipy"), Xs, Xt)
    frank_wolfe = skada_weights(skada.KMMReweightAdapter(gamma=gamma, B=B), Xs, Xt)
    best = kmm_objective(ours, Xs, Xt, gamma)
    scale = abs(best)
    assert best <= kmm_objective(slsqp, Xs, Xt, gamma) + 1e-6 * scale
    if frank_wolfe.max() <= B:
        assert best <= kmm_objective(frank_wolfe, Xs, Xt, gamma) + 1e-6 * scale
    else:  # skada's default Frank-Wolfe solver ignores the upper bound B (it may then look "better")
        assert B == 5.0
    # The optimum is flat in some directions, so weights can differ where the objective does not;
    # they still agree closely overall.
    assert np.corrcoef(ours, slsqp)[0, 1] > 0.9
    # A tight bound B keeps the weights from chasing noise: they follow the true ratio's shape.
    if B == 5.0:
        assert np.corrcoef(ours, ratio)[0, 1] > 0.5


def test_kmm_default_gamma_and_eps_follow_skada():
    Xs, Xt, _ = gaussian_shift(80, 60, seed=1)
    ours = kmm_weights(Xs, Xt, B=3.0, eps=0.1)  # gamma None → 1 / n_features
    assert abs(ours.mean() - 1) <= 0.1 + 1e-6
    assert kmm_objective(ours, Xs, Xt) <= kmm_objective(kmm_weights(Xs, Xt, gamma=0.5, B=3.0, eps=0.1), Xs, Xt) + 1e-6


def test_kliep_reaches_a_higher_likelihood_than_skada_with_the_same_centers(skada):
    Xs, Xt, ratio = gaussian_shift(300, 200)
    adapter = skada.KLIEPReweightAdapter(gamma=0.5, n_centers=50, random_state=0)
    theirs = skada_weights(adapter, Xs, Xt)
    ours = kliep_fit(Xs, Xt, gamma=0.5, centers=adapter.centers_)
    skada_model = KLIEPModel(adapter.alpha_, adapter.centers_, 0.5)
    np.testing.assert_allclose(skada_model(Xs), theirs)  # same parametrisation as skada
    assert ours.objective(Xt) >= skada_model.objective(Xt) - 1e-9
    assert ours(Xs).mean() == pytest.approx(1.0) and (ours.alpha >= 0).all()
    assert np.corrcoef(ours(Xs), theirs)[0, 1] > 0.9
    assert np.corrcoef(ours(Xs), ratio)[0, 1] >= np.corrcoef(theirs, ratio)[0, 1] - 0.02


def test_kliep_weights_mean_one_and_track_the_ratio():
    Xs, Xt, ratio = gaussian_shift(300, 200, seed=2)
    w = kliep_weights(Xs, Xt, gamma=0.5, n_centers=100, random_state=0)
    assert w.mean() == pytest.approx(1.0) and w.min() >= 0
    assert np.corrcoef(w, ratio)[0, 1] > 0.9
    np.testing.assert_array_equal(w, kliep_weights(Xs, Xt, gamma=0.5, n_centers=100, random_state=0))
    # ... and the seed is what fixes them: other centres give other weights (so the line above can fail).
    assert not np.allclose(w, kliep_weights(Xs, Xt, gamma=0.5, n_centers=100, random_state=1))


def test_effective_sample_size_bounds():
    assert effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert effective_sample_size(np.r_[1.0, np.zeros(9)]) == pytest.approx(1)
    w = np.random.default_rng(0).exponential(size=2000)
    # Independent reference: for i.i.d. weights ESS / n -> (E w)² / E w², which is 1/2 for Exp(1).
    assert effective_sample_size(w) / len(w) == pytest.approx(0.5, abs=0.05)
    assert effective_sample_size(3 * w) == pytest.approx(effective_sample_size(w))  # scale-free
    with pytest.raises(ValueError, match="non-negative"):
        effective_sample_size([1.0, -1.0])


def test_bad_inputs_fail_early_with_the_fix():
    Xs, Xt, _ = gaussian_shift(20, 20)
    with pytest.raises(ValueError, match="same features"):
        kmm_weights(Xs, Xt[:, :1])
    with pytest.raises(ValueError, match="reshape"):
        kliep_weights(Xs[:, 0], Xt)
    with pytest.raises(ValueError, match="NaN"):
        classifier_weights(np.where(Xs > 1, np.nan, Xs), Xt)
    with pytest.raises(ValueError, match="gamma"):
        kmm_weights(Xs, Xt, gamma=-1.0)


def conflicting_domains(seed: int = 0):
    """Source and target share a rule except on x0 > 1, where the source's labels are flipped."""
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(400, 2)), rng.normal(size=(420, 2))
    rule = lambda X: (X[:, 0] + X[:, 1] > 0).astype(int)
    ys = np.where(Xs[:, 0] > 1, 1 - rule(Xs), rule(Xs))
    yt = rule(Xt)
    return Xs, ys, Xt[:20], yt[:20], Xt[20:], yt[20:], Xs[:, 0] > 1


def test_tradaboost_down_weights_conflicting_source_rows_and_beats_both_baselines():
    for seed in range(3):
        Xs, ys, Xl, yl, Xtest, ytest, conflicting = conflicting_domains(seed)
        model = TrAdaBoost(LogisticRegression(), n_estimators=20).fit(Xs, ys, Xl, yl)
        # A linear model cannot follow the flipped labels, keeps getting them wrong, and drops them.
        assert model.source_weights_[conflicting].mean() < 0.01 * model.source_weights_[~conflicting].mean()
        boosted = model.score(Xtest, ytest)
        both = LogisticRegression().fit(np.vstack([Xs, Xl]), np.r_[ys, yl]).score(Xtest, ytest)
        target_only = LogisticRegression().fit(Xl, yl).score(Xtest, ytest)
        assert boosted > both + 0.1 and boosted >= target_only


def test_tradaboost_first_round_follows_the_update_rule():
    Xs, ys, Xl, yl, *_ = conflicting_domains(1)
    model = TrAdaBoost(LogisticRegression(), n_estimators=2).fit(Xs, ys, Xl, yl)
    first = model.estimators_[0]
    wrong_s = first.predict(Xs) != ys
    wrong_t = first.predict(Xl) != yl
    error = np.clip(wrong_t.mean(), 1e-10, 0.499)
    assert model.target_errors_[0] == pytest.approx(error)
    beta_source = 1 / (1 + np.sqrt(2 * np.log(len(Xs)) / 2))
    w = np.r_[np.where(wrong_s, beta_source, 1.0), np.where(wrong_t, (1 - error) / error, 1.0)]
    # After round 2 the weights are multiplied again; recompute round 2 from round 1's weights.
    second = model.estimators_[1]
    wrong2 = np.r_[second.predict(Xs) != ys, second.predict(Xl) != yl]
    w = w / w.max()
    error2 = np.clip(np.sum(w[len(Xs):] * wrong2[len(Xs):]) / w[len(Xs):].sum(), 1e-10, 0.499)
    w[: len(Xs)] *= beta_source ** wrong2[: len(Xs)]
    w[len(Xs):] *= (error2 / (1 - error2)) ** -wrong2[len(Xs):].astype(float)
    w = w / w.max()
    np.testing.assert_allclose(np.r_[model.source_weights_, model.target_weights_], w, rtol=1e-9)
    # The vote uses the second half of the rounds: with two rounds, exactly the second model.
    np.testing.assert_array_equal(model.predict(Xs), second.predict(Xs))


def test_em_recovers_a_shifted_class_prior():
    from transfer_utils.methods.instance import adjust_to_prior, em_target_prior

    rng = np.random.default_rng(0)
    def sample(n, share):
        y = (rng.random(n) < share).astype(int)
        return rng.normal(y * 1.5, 1.0)[:, None], y
    Xs, ys = sample(4000, 0.6)
    Xt, yt = sample(4000, 0.25)
    model = LogisticRegression().fit(Xs, ys)
    source_prior = np.bincount(ys) / len(ys)
    estimate = em_target_prior(model.predict_proba(Xt), source_prior)
    assert estimate[1] == pytest.approx(np.mean(yt), abs=0.03)
    adjusted = adjust_to_prior(model.predict_proba(Xt), source_prior, estimate)
    np.testing.assert_allclose(adjusted.sum(axis=1), 1.0)
    assert np.mean(adjusted.argmax(1) == yt) > model.score(Xt, yt) + 0.02
