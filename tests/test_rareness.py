"""Rareness marginals are one-tailed standard normal, larger means rarer, and the copula is sane."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import stats

from training.features import to_features
from training.rareness import copula_correlation, from_copula_normal, one_tailed_normal, rareness, to_copula_normal
from training.scaling import Scaling


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Scaling]:
    rng = np.random.default_rng(seed)
    pz = 10 + rng.exponential(20, n)
    muons = np.column_stack(
        [
            rng.choice([-13.0, 13.0], n),
            rng.normal(0, 2, n),
            rng.normal(0, 2, n),
            -7084.5 + rng.exponential(40, n),
            rng.laplace(0, 0.4, n),
            rng.laplace(0, 0.4, n),
            pz,
        ]
    ).astype(np.float32)
    muons[: n // 5, 1:3] = 0.0  # ties: many muons at the primary vertex
    weights = rng.uniform(0.5, 1.0, n) * np.where(pz > 40, 4.0, 1.0)  # weights tied to the kinematics
    scaling = Scaling.fit(muons, weights)
    return to_features(tf.constant(muons), scaling).numpy(), weights, scaling


def test_marginals_are_one_tailed_normal_with_weights() -> None:
    """Each group's weighted aux distribution is the half-normal (KS on a weight-resampled draw)."""
    features, weights, scaling = _sample(6000, 0)
    aux = rareness(features, weights, scaling, seed=1)
    assert aux.shape == (6000, 4) and np.all(aux > 0)
    rng = np.random.default_rng(2)
    draw = rng.choice(len(aux), 4000, p=weights / weights.sum())
    for group in range(4):
        assert stats.kstest(aux[draw, group], stats.halfnorm.cdf).pvalue > 1e-3, group
    unweighted = rareness(features, np.ones_like(weights), scaling, seed=1)
    assert stats.kstest(unweighted[draw, 3], stats.halfnorm.cdf).pvalue < 1e-4  # the test sees the weights


def test_larger_means_rarer() -> None:
    """Muons far out in pz (sparse) get larger pz rareness than those at the core."""
    features, weights, scaling = _sample(4000, 3)
    aux = rareness(features, weights, scaling, seed=1)
    pz = features[:, 8]
    core = np.abs(pz - np.median(pz)) < 0.2
    tail = pz > np.quantile(pz, 0.995)
    assert aux[tail, 3].mean() > aux[core, 3].mean() + 1.0


def test_one_tailed_rank_map_is_weighted() -> None:
    """Two values, weights 3:1: the heavy one sits at u = 3/8, the light one at u = 7/8."""
    a = one_tailed_normal(np.array([1.0, 2.0]), np.array([3.0, 1.0]), np.random.default_rng(0))
    np.testing.assert_allclose(stats.norm.cdf(a) * 2 - 1, [3 / 8, 7 / 8])


def test_copula_round_trip_and_correlation() -> None:
    rng = np.random.default_rng(4)
    target = np.array([[1, 0.6, 0, 0], [0.6, 1, 0, 0], [0, 0, 1, -0.3], [0, 0, -0.3, 1]])
    z = rng.standard_normal((50000, 4)) @ np.linalg.cholesky(target).T
    aux = from_copula_normal(z)
    assert np.all(aux >= 0)
    np.testing.assert_allclose(to_copula_normal(aux), z, atol=1e-8)
    np.testing.assert_allclose(copula_correlation(aux, np.ones(len(aux))), target, atol=0.02)
