"""Rareness marginals are one-tailed standard normal, larger means rarer, and the copula is sane."""

from __future__ import annotations

import numpy as np
from scipy import stats

from training.rareness import copula_correlation, from_copula_normal, one_tailed_normal, rareness, to_copula_normal


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Physical muons shaped like the reference source, with weights tied to pz and ties at x = y = 0."""
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
    return muons, rng.uniform(0.5, 1.0, n) * np.where(pz > 40, 4.0, 1.0)


def test_marginals_are_one_tailed_normal_with_weights() -> None:
    """Each group's weighted aux distribution is the half-normal (KS on a weight-resampled draw)."""
    muons, weights = _sample(6000, 0)
    aux = rareness(muons, weights, seed=1)
    assert aux.shape == (6000, 4) and np.all(aux > 0)
    rng = np.random.default_rng(2)
    draw = rng.choice(len(aux), 4000, p=weights / weights.sum())
    for group in range(4):
        assert stats.kstest(aux[draw, group], stats.halfnorm.cdf).pvalue > 1e-3, group
    unweighted = rareness(muons, np.ones_like(weights), seed=1)
    assert stats.kstest(unweighted[draw, 3], stats.halfnorm.cdf).pvalue < 1e-4  # the test sees the weights


def test_larger_means_rarer_in_the_physical_tails() -> None:
    """Large r, late z, large pT and large pz are rare; the dense core (also next to the z edge) is not."""
    muons, weights = _sample(6000, 3)
    aux = rareness(muons, weights, seed=1)
    r, z, pt, pz = np.hypot(muons[:, 1], muons[:, 2]), muons[:, 3], np.hypot(muons[:, 4], muons[:, 5]), muons[:, 6]
    for group, values in enumerate((r, z, pt, pz)):
        tail = values > np.quantile(values, 0.99)
        core = values < np.quantile(values, 0.3)
        assert aux[tail, group].mean() > aux[core, group].mean() + 1.0, group


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
