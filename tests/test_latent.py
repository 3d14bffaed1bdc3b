"""The aux distributions: exact densities, exact importance weights, and the seed proposal's mixture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from service.engine.latent import AuxDistribution, SeedProposal, half_normal_from_normal, normal_from_half_normal

CORRELATION = np.array(
    [
        [1.0, 0.3, 0.5, -0.2],
        [0.3, 1.0, 0.1, 0.0],
        [0.5, 0.1, 1.0, 0.4],
        [-0.2, 0.0, 0.4, 1.0],
    ]
)


def test_half_normal_map_is_exact_and_invertible_into_the_far_tail() -> None:
    z = np.array([-30.0, -8.0, -1.0, 0.0, 0.5, 1.0, 6.0, 20.0, 35.0])
    a = half_normal_from_normal(z)
    assert np.all(a >= 0) and np.all(np.diff(a) > 0)
    # Phi^-1((1 + Phi(z)) / 2) computed by brute force where doubles allow it.
    bulk = np.abs(z) < 6
    np.testing.assert_allclose(a[bulk], stats.norm.ppf((1 + stats.norm.cdf(z[bulk])) / 2), rtol=1e-12)
    np.testing.assert_allclose(normal_from_half_normal(a), z, rtol=1e-10)


def test_plain_marginals_are_half_normal() -> None:
    plain = AuxDistribution(CORRELATION)
    aux = plain.from_normals(np.random.default_rng(5).standard_normal((20000, 4)))
    for i in range(4):
        assert stats.kstest(aux[:, i], stats.halfnorm.cdf).pvalue > 1e-3
    # The copula keeps the rank correlation of the normals it was built from.
    rho = stats.spearmanr(aux[:, 0], aux[:, 2]).statistic
    assert rho == pytest.approx(6 / np.pi * np.arcsin(0.5 / 2), abs=0.03)


def test_log_pdf_is_the_change_of_variables_density() -> None:
    plain = AuxDistribution(CORRELATION)
    aux = plain.from_normals(np.random.default_rng(6).standard_normal((500, 4)))
    z = normal_from_half_normal(aux)
    jacobian = np.log(2 * stats.norm.pdf(aux)) - stats.norm.logpdf(z)  # log |dz/da| per group
    expected = stats.multivariate_normal(np.zeros(4), CORRELATION).logpdf(z) + jacobian.sum(axis=1)
    np.testing.assert_allclose(plain.log_pdf(aux), expected, rtol=1e-9)
    np.testing.assert_allclose(plain.log_pdf_normals(z), expected - jacobian.sum(axis=1), rtol=1e-9)
    assert plain.log_pdf(np.array([[-0.1, 1, 1, 1]]))[0] == -np.inf


def test_boosted_weight_matches_the_closed_form() -> None:
    """With R = I only the scaled marginal differs: w = s exp(-a^2 (1 - 1/s^2) / 2)."""
    plain, scale = AuxDistribution(np.eye(4)), 2.5
    boosted = plain.with_scale([1, 1, scale, 1])
    aux = boosted.from_normals(np.random.default_rng(7).standard_normal((1000, 4)))
    expected = np.log(scale) - aux[:, 2] ** 2 * (1 - 1 / scale**2) / 2
    np.testing.assert_allclose(boosted.log_weight(aux, plain), expected, rtol=1e-9, atol=1e-12)


def test_boosted_weights_reproduce_plain_tail_rates() -> None:
    plain = AuxDistribution(CORRELATION)
    boosted = plain.with_scale([1.5, 1.0, 2.0, 1.2])
    aux = boosted.from_normals(np.random.default_rng(8).standard_normal((200_000, 4)))
    weight = np.exp(boosted.log_weight(aux, plain))
    assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(len(weight)))
    tail = aux[:, 2] > 3.0
    rate = weight[tail].sum() / len(weight)
    error = np.sqrt((weight[tail] ** 2).sum()) / len(weight)
    assert rate == pytest.approx(2 * stats.norm.sf(3.0), abs=4 * error)
    assert tail.mean() > 20 * 2 * stats.norm.sf(3.0)  # far more tail muons per muon drawn


@pytest.mark.parametrize("scale", [[0.5, 1, 1, 1], [1, 1, 1], [1, np.nan, 1, 1]])
def test_bad_scales_are_refused(scale: list[float]) -> None:
    with pytest.raises(ValueError, match="scales"):
        AuxDistribution(CORRELATION, np.asarray(scale))


def test_non_positive_definite_correlation_is_refused() -> None:
    with pytest.raises(ValueError, match="positive definite"):
        AuxDistribution(np.full((4, 4), 1.0) - 2 * np.eye(4))


@pytest.mark.parametrize("plain_fraction", [0.0, 0.1])
def test_seed_proposal_density_is_the_whole_mixture(plain_fraction: float) -> None:
    rng = np.random.default_rng(9)
    plain = AuxDistribution(CORRELATION)
    proposal = SeedProposal(np.abs(rng.normal(2, 0.5, (3000, 4))), plain, 0.3, plain_fraction)
    z = proposal.sample_normals(rng.random(5), rng.standard_normal((5, 4)))
    components = [stats.multivariate_normal(centre, 0.09 * np.eye(4)).pdf(z) for centre in proposal.centres]
    expected = plain_fraction * stats.multivariate_normal(np.zeros(4), CORRELATION).pdf(z) + (
        1 - plain_fraction
    ) * np.mean(components, axis=0)
    np.testing.assert_allclose(proposal.log_pdf_normals(z), np.log(expected), rtol=1e-9)


def test_seed_proposal_weights_are_unbiased_and_bounded() -> None:
    """E_q[p / q] = 1 (so draws and density agree) and the plain share caps the weights at 1 / lambda."""
    rng = np.random.default_rng(10)
    plain = AuxDistribution(CORRELATION)
    seed_aux = plain.with_scale([1, 1, 2, 1]).from_normals(rng.standard_normal((300, 4)))
    proposal = SeedProposal(seed_aux, plain, plain_fraction=0.1)
    assert proposal.sigma == pytest.approx(SeedProposal.scott_sigma(proposal.centres))
    choice = rng.random(100_000)
    z = proposal.sample_normals(choice, rng.standard_normal((100_000, 4)))
    weight = np.exp(plain.log_pdf_normals(z) - proposal.log_pdf_normals(z))
    assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(len(weight)))
    assert weight.max() <= 10 * (1 + 1e-9)


def test_seed_proposal_refuses_nothing_to_smear() -> None:
    plain = AuxDistribution(CORRELATION)
    with pytest.raises(ValueError, match="non-empty"):
        SeedProposal(np.empty((0, 4)), plain)
    with pytest.raises(ValueError, match="sigma"):
        SeedProposal(np.ones((3, 4)), plain, sigma=0.0)
    with pytest.raises(ValueError, match="plain fraction"):
        SeedProposal(np.ones((3, 4)), plain, plain_fraction=1.0)
