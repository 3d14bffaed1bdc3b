"""Electromagnetic muon pairs: the Bethe-Heitler muon-pair cross section, its energy sharing, and the forced
conversion of photons along their path."""

from __future__ import annotations

import numpy as np
import pytest

from training.reference.em_pairs import (
    ALPHA,
    MUON_RADIUS,
    SQRT_E,
    asymptotic_cross_section,
    conversion_rates,
    cross_section,
    differential,
    lowest_fraction,
    nuclear_size,
    pair_muons,
    sample_sharing,
    w_infinity,
)
from training.reference.events import Hadrons
from training.reference.geometry import MUON_MASS, Layout
from training.reference.materials import MATERIALS
from training.reference.settings import SourceSettings

NUCLEI = [(m.protons, m.nucleons) for m in MATERIALS.values()]  # Mo, W, Fe


def _fitted_total(energy: np.ndarray, protons: float, nucleons: float) -> np.ndarray:
    """Burkhardt, Kelner and Kokoulin's fitted total cross section (CERN-SL-2002-016, eq. for sigma_tot; the
    Geant4 Physics Reference Manual's "total cross section"), energies in GeV: an independent published
    formula the numerical integral of dsigma/dx must reproduce."""
    size = nuclear_size(nucleons)
    w_m = 1 / (4 * size * SQRT_E * MUON_MASS)
    saturation = w_infinity(protons, nucleons) / w_m
    threshold_power = 1.479 + 0.00799 * size
    correction = 1 + 0.04 * np.log(1 + (-18 + 4347 / (183 * protons ** (-1 / 3))) / energy)
    effective = (1 - 4 * MUON_MASS / energy) ** threshold_power * (saturation**-0.88 + energy**-0.88) ** (-1 / 0.88)
    return 28 / 9 * protons**2 * ALPHA * MUON_RADIUS**2 * np.log(1 + w_m * correction * effective)


@pytest.mark.parametrize(("protons", "nucleons"), NUCLEI)
def test_the_cross_section_reaches_its_textbook_high_energy_limit(protons: float, nucleons: float) -> None:
    """sigma -> (28/9) Z^2 alpha r_mu^2 ln(183 Z^-1/3 (m_mu / m_e) / D_n): the complete-screening
    Bethe-Heitler limit with the muon's radius, the nucleus' size D_n = 1.54 A^0.27 cutting the logarithm
    (Tsai, Rev. Mod. Phys. 46 (1974) 815 for the e+ e- form; BKK 2002 for the muon's). It is approached
    slowly: half of it near 150 GeV, 99.8% at 1e6 GeV, and the integral never exceeds it."""
    limit = asymptotic_cross_section(protons, nucleons)
    expected = (
        28
        / 9
        * protons**2
        * ALPHA
        * MUON_RADIUS**2
        * np.log(183 * protons ** (-1 / 3) * 206.768 / (1.54 * nucleons**0.27))
    )
    assert limit == pytest.approx(expected, rel=1e-4)
    energy = np.geomspace(1.0, 1e6, 40)
    sigma = cross_section(energy, protons, nucleons)
    assert np.all(np.diff(sigma) > 0) and np.all(sigma < limit)
    assert sigma[-1] / limit == pytest.approx(1.0, abs=0.005)
    half = np.interp(0.5 * limit, sigma, energy)
    assert 100 < half < 250


@pytest.mark.parametrize(("protons", "nucleons"), NUCLEI)
def test_the_integral_agrees_with_the_published_fit(protons: float, nucleons: float) -> None:
    energy = np.geomspace(1.0, 1e5, 30)
    ratio = cross_section(energy, protons, nucleons) / _fitted_total(energy, protons, nucleons)
    assert np.all(np.abs(ratio - 1) < 0.015), ratio


def test_cross_sections_in_mb_and_the_muon_to_electron_pair_ratio() -> None:
    """W at 100 GeV: 0.73 mb per atom (e+ e-: 35 b); the chance that a 100 GeV photon makes a muon pair
    before an e+ e- pair, sigma n 9/7 X0, is 2.1e-5 (the asymptotic ratio (m_e/m_mu)^2 ln(...)/ln(...)
    that the README's first estimate used is 6e-5: at 100 GeV sigma is 43% of its limit)."""
    tungsten = MATERIALS["tungsten"]
    sigma = cross_section(np.array([100.0]), tungsten.protons, tungsten.nucleons)[0]
    assert sigma * 1e27 == pytest.approx(0.73, rel=0.02)  # mb
    chance = sigma * tungsten.atoms * 9 / 7 * tungsten.radiation_length
    assert chance == pytest.approx(2.1e-5, rel=0.03)


def test_energy_sharing_follows_the_differential_cross_section() -> None:
    """Sampled x against dsigma/dx at 30 GeV in W: a chi^2 over 20 bins."""
    tungsten = MATERIALS["tungsten"]
    n, energy = 200_000, 30.0
    x = sample_sharing(
        np.full(n, energy), np.full(n, tungsten.protons), np.full(n, tungsten.nucleons), np.random.default_rng(1)
    )
    low = lowest_fraction(np.array([energy]))[0]
    assert x.min() >= low and x.max() <= 1 - low
    edges = np.linspace(low, 1 - low, 21)
    counts, _ = np.histogram(x, edges)
    fine = np.linspace(low, 1 - low, 20_001)
    density = differential(np.full(len(fine), energy), fine, tungsten.protons, tungsten.nucleons)
    cumulative = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(fine))])
    expected = np.diff(np.interp(edges, fine, cumulative)) / cumulative[-1] * n
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 45  # 19 degrees of freedom: p ~ 1e-3
    assert abs(np.mean(x) - 0.5) < 0.003  # symmetric between mu+ and mu-


def test_forced_conversion_in_one_block() -> None:
    """In iron alone: P(muon pair first) = s / (s + e) (1 - exp(-(s + e) L)); the muons share the photon's
    energy, have opposite charges, start on its line of flight and carry that probability as weight."""
    layout = Layout.from_settings(SourceSettings(layers=(("iron", 480.0, 1.0),), absorber_layers=1))
    n, energy = 20_000, 80.0
    slope = 0.01
    direction = np.array([slope, 0.0, 1.0]) / np.hypot(slope, 1.0)
    momentum = np.tile([*(energy * direction), energy], (n, 1))
    start = np.array([0.0, 0.0, layout.edges[0] + 5.0])
    position = np.tile(start, (n, 1))
    zeros = np.zeros(n, dtype=np.int8)
    photons = Hadrons(np.full(n, 22), momentum, position, np.full(n, 0.5), zeros, zeros + 1, np.ones(n))
    muons = pair_muons(photons, layout, np.random.default_rng(2))
    pairs, electrons = conversion_rates(layout, np.array([energy]))
    total = pairs[0, 0] + electrons[0, 0]
    path = 475.0 / direction[2]
    chance = pairs[0, 0] / total * -np.expm1(-total * path)
    assert len(muons.weight) == 2 * n and np.allclose(muons.weight, 0.5 * chance)
    assert sorted(np.unique(muons.pdg)) == [-13.0, 13.0] and np.sum(muons.pdg) == 0
    muon_energy = np.sqrt(np.sum(muons.momentum**2, axis=1) + MUON_MASS**2)
    assert np.allclose(muon_energy[:n] + muon_energy[n:], energy, rtol=1e-6)
    travelled = muons.position - start
    assert np.allclose(travelled[:, 0], travelled[:, 2] * slope)
    assert np.mean(np.linalg.norm(travelled, axis=1)) == pytest.approx(1 / total, rel=0.03)  # ~9/7 X0
    angle = np.arccos(np.clip(muons.momentum @ direction / np.linalg.norm(muons.momentum, axis=1), -1, 1))
    assert np.median(angle * muon_energy) == pytest.approx(2.0 * MUON_MASS, rel=0.3)  # pT to the photon ~ m_mu
