"""Rareness marginals are one-tailed standard normal, larger means rarer, and the copula is sane."""

from __future__ import annotations

import numpy as np
from scipy import stats

from training.preparation.rareness import (
    RankTable,
    Rareness,
    copula_correlation,
    from_copula_normal,
    rareness,
    to_copula_normal,
)


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


def _assert_rarer_in_the_tails(muons: np.ndarray, aux: np.ndarray) -> None:
    """The top 1% in r, z, pT and pz have aux larger by more than 1 than the densest 30%."""
    r, z, pt, pz = np.hypot(muons[:, 1], muons[:, 2]), muons[:, 3], np.hypot(muons[:, 4], muons[:, 5]), muons[:, 6]
    for group, values in enumerate((r, z, pt, pz)):
        tail = values > np.quantile(values, 0.99)
        core = values < np.quantile(values, 0.3)
        assert aux[tail, group].mean() > aux[core, group].mean() + 1.0, group


def test_larger_means_rarer_in_the_physical_tails() -> None:
    """Large r, late z, large pT and large pz are rare; the dense core (also next to the z edge) is not."""
    muons, weights = _sample(6000, 3)
    aux = rareness(muons, weights, seed=1)
    _assert_rarer_in_the_tails(muons, aux)


def test_rank_map_is_weighted_and_spreads_ties() -> None:
    """Table distances 1 and 2 of weights 3:1: the heavy one lands in u [0, 3/4), the light one in [3/4, 1),
    where its tie number says; a distance between them interpolates between their midpoints; a tie of
    several entries spreads uniformly over their joint weight."""
    table = RankTable.of(np.array([1.0, 2.0]), np.array([3.0, 1.0]))
    np.testing.assert_allclose(table.uniform(np.array([1.0, 2.0]), np.array([0.5, 0.5])), [3 / 8, 7 / 8])
    np.testing.assert_allclose(table.uniform(np.array([1.0, 2.0]), np.array([0.0, 0.99])), [0.0, 0.9975])
    assert 3 / 8 < table.uniform(np.array([1.5]), np.array([0.5]))[0] < 7 / 8
    ties = RankTable.of(np.array([0.0, 0.0, 0.0, 5.0]), np.ones(4))
    np.testing.assert_allclose(ties.uniform(np.zeros(3), np.array([0.0, 0.5, 0.9])), [0.0, 0.375, 0.675])


def test_subsample_reference_keeps_order_and_marginals() -> None:
    """Neighbours among 2,000 reference muons, ranks against a 10,000-muon table, 40,000 muons in all:
    aux still grows into every tail and its weighted marginals stay one-tailed normal."""
    muons, weights = _sample(40000, 5)
    shuffled = np.random.default_rng(5).permutation(len(muons))  # the table is a uniform subsample
    muons, weights, table = muons[shuffled], weights[shuffled], 10000
    found = Rareness(muons[:table], weights[:table], n_ref=2000)
    member = np.arange(len(muons)) < 2000
    aux = found.aux(found.distances(muons, member), np.random.default_rng(6).random((len(muons), 4)))
    assert np.all(aux > 0) and np.all(np.isfinite(aux))
    draw = np.random.default_rng(7).choice(len(aux), 4000, p=weights / weights.sum())
    for group in range(4):
        assert stats.kstest(aux[draw, group], stats.halfnorm.cdf).pvalue > 1e-3, group
    _assert_rarer_in_the_tails(muons, aux)


def test_rareness_is_monotone_in_density() -> None:
    """An exponential in pz alone: the density falls with pz, and the median aux of each decile of pz
    rises with it, with neighbours among 1,000 reference muons of 30,000."""
    rng = np.random.default_rng(8)
    muons = np.zeros((30000, 7))
    muons[:, 6] = 10 + rng.exponential(20, 30000)
    found = Rareness(muons[:5000], np.ones(5000), n_ref=1000)
    aux = found.aux(found.distances(muons, np.arange(30000) < 1000), rng.random((30000, 4)))[:, 3]
    decile = np.searchsorted(np.quantile(muons[:, 6], np.linspace(0.1, 0.9, 9)), muons[:, 6])
    medians = [np.median(aux[decile == d]) for d in range(10)]
    assert np.all(np.diff(medians) > 0), medians


def test_copula_round_trip_and_correlation() -> None:
    rng = np.random.default_rng(4)
    target = np.array([[1, 0.6, 0, 0], [0.6, 1, 0, 0], [0, 0, 1, -0.3], [0, 0, -0.3, 1]])
    z = rng.standard_normal((50000, 4)) @ np.linalg.cholesky(target).T
    aux = from_copula_normal(z)
    assert np.all(aux >= 0)
    np.testing.assert_allclose(to_copula_normal(aux), z, atol=1e-8)
    np.testing.assert_allclose(copula_correlation(aux, np.ones(len(aux))), target, atol=0.02)
