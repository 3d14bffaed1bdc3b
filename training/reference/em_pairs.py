"""Electromagnetic muon pairs: photons of the cascade converting into mu+ mu- in the field of a nucleus.

Every collision makes photons (pi0, eta, omega, Sigma0 decays: Pythia decays them all, c tau < 10 mm), and
a photon above ~10 GeV can convert into a muon pair instead of an e+ e- pair (Bethe-Heitler; the process
FairShip's production turns on as Geant4's ``GammaToMuons``). The cross section is Burkhardt, Kelner and
Kokoulin's (CERN-SL-2002-016 (AP), "Monte Carlo generator for muon pair production", the model of
Geant4's ``G4GammaConversionToMuons``, Physics Reference Manual "Gamma conversion into a muon pair"):

    dsigma/dx = 4 alpha Z^2 r_mu^2 (1 - 4/3 x (1 - x)) ln W,   x = E(mu+) / E(gamma),
    W = W_inf (1 + (D_n sqrt(e) - 2) delta / m_mu) / (1 + B Z^-1/3 sqrt(e) delta / m_e),
    W_inf = B Z^-1/3 m_mu / (D_n m_e),  delta = m_mu^2 / (2 E x (1 - x)),  B = 183,  D_n = 1.54 A^0.27,

with atomic screening (B Z^-1/3, Thomas-Fermi) and the nucleus' finite size (D_n), which for muons
matters more than screening. Integrated over x it tends to (28/9) Z^2 alpha r_mu^2 ln W_inf at high
energy (tests/test_em_pairs.py checks the integral against that limit and against the paper's fitted
total cross section). Pair production on atomic electrons (threshold 43.9 GeV, ~1/Z of the total) is
left out.

A photon flies straight from its production point to the exit plane and meets two competing processes
in each block: conversion into a muon pair (atoms/cm3 x sigma) and into e+ e- (mean free path 9/7 X0).
As the cascade forces decays, the muon pair is forced: it is made at a point drawn given that it came
first, and each muon carries the photon's weight x P(muon pair first). Only photons of collisions are
followed: the photons of their e+ e- showers (bremsstrahlung of the conversion electrons) are left out.
"""

from __future__ import annotations

from math import exp

import numpy as np

from training.reference.events import KINDS, Hadrons, Muons
from training.reference.geometry import MUON_MASS, Layout, competing, rotate_to, sample_distance

Number = float | np.ndarray  # one nucleus, or one per photon
PHOTON = 22
ALPHA = 1 / 137.035999
ELECTRON_MASS = 0.51099895e-3  # GeV
MUON_RADIUS = 2.8179403262e-13 * ELECTRON_MASS / MUON_MASS  # cm: the classical radius of the muon
SCREENING = 183.0  # B, for every nucleus heavier than hydrogen
SQRT_E = exp(0.5)
THRESHOLD = 4 * MUON_MASS  # the paper's: below it the formula is not meant to hold (and sigma is ~0)
E_E_PAIR_PATH = 9.0 / 7.0  # mean free path of e+ e- conversion, in radiation lengths
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
# Polar angle of each muon to the photon: theta = u m_mu / E_mu with u from the sum of two Gamma(2) laws
# (Geant4's approximation for pair-produced leptons); the muons go out back to back in azimuth.
_ANGLE_RATES = (1.6, 1.6 / 3)
_ANGLE_SHARE = 0.25


def nuclear_size(nucleons: Number) -> Number:
    """D_n = 1.54 A^0.27: the nucleus' size in the units of the formula."""
    return 1.54 * nucleons**0.27


def w_infinity(protons: Number, nucleons: Number) -> Number:
    """The high-energy limit of W: the ratio of the atom's screening radius to the nucleus' size, scaled."""
    return SCREENING * protons ** (-1 / 3) * MUON_MASS / (nuclear_size(nucleons) * ELECTRON_MASS)


def log_w(energy: np.ndarray, x: np.ndarray, protons: Number, nucleons: Number) -> np.ndarray:
    """ln W of the differential cross section; 0 where W < 1 (no pair there, near the kinematic edge)."""
    delta = MUON_MASS**2 / (2 * energy * x * (1 - x))
    screened = SCREENING * protons ** (-1 / 3) * SQRT_E * delta / ELECTRON_MASS
    w = w_infinity(protons, nucleons) * (1 + (nuclear_size(nucleons) * SQRT_E - 2) * delta / MUON_MASS) / (1 + screened)
    return np.log(np.maximum(w, 1.0))


def differential(energy: np.ndarray, x: np.ndarray, protons: float, nucleons: float) -> np.ndarray:
    """dsigma/dx in cm2 for a photon of ``energy`` GeV giving the mu+ a fraction ``x`` of it."""
    shape = 1 - 4 / 3 * x * (1 - x)
    return 4 * ALPHA * protons**2 * MUON_RADIUS**2 * shape * log_w(energy, x, protons, nucleons)


def lowest_fraction(energy: np.ndarray) -> np.ndarray:
    """The least energy fraction of either muon, 1/2 - sqrt(1/4 - m_mu / E) (the paper's range)."""
    return 0.5 - np.sqrt(np.clip(0.25 - MUON_MASS / energy, 0.0, None))


def cross_section(energy: np.ndarray, protons: float, nucleons: float) -> np.ndarray:
    """Total muon-pair cross section per atom (cm2), integrating dsigma/dx over x by Gauss-Legendre on each
    half of the symmetric range; 0 below ``THRESHOLD``."""
    energy = np.asarray(energy, dtype=float)
    low = lowest_fraction(np.maximum(energy, THRESHOLD))
    half = (0.5 - low)[:, None] / 2
    x = low[:, None] + half * (1 + _NODES[None, :])
    values = differential(energy[:, None], x, protons, nucleons)
    return np.where(energy > THRESHOLD, 2 * np.sum(values * _WEIGHTS, axis=1) * half[:, 0], 0.0)


def asymptotic_cross_section(protons: float, nucleons: float) -> float:
    """The high-energy limit (28/9) Z^2 alpha r_mu^2 ln W_inf, in cm2."""
    return float(28 / 9 * protons**2 * ALPHA * MUON_RADIUS**2 * np.log(w_infinity(protons, nucleons)))


def sample_sharing(
    energy: np.ndarray, protons: np.ndarray, nucleons: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The mu+'s energy fraction x for each photon, from dsigma/dx by rejection: x uniform over its range,
    kept with probability (1 - 4/3 x (1 - x)) ln W(x) / ln W(1/2) (ln W is largest at x = 1/2)."""
    x = np.empty(len(energy))
    todo = np.arange(len(energy))
    while len(todo):
        e, z, a = energy[todo], protons[todo], nucleons[todo]
        low = lowest_fraction(e)
        trial = low + (1 - 2 * low) * rng.uniform(size=len(todo))
        top = log_w(e, np.full(len(todo), 0.5), z, a)
        value = (1 - 4 / 3 * trial * (1 - trial)) * log_w(e, trial, z, a)
        accept = rng.uniform(size=len(todo)) * top < value
        x[todo[accept]] = trial[accept]
        todo = todo[~accept]
    return x


def _polar_angles(energy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rate = np.where(rng.uniform(size=len(energy)) < _ANGLE_SHARE, *_ANGLE_RATES)
    u = rng.gamma(2.0, 1.0, size=len(energy)) / rate
    return np.minimum(u * MUON_MASS / energy, np.pi / 2)


def conversion_rates(layout: Layout, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, K)`` rates (1/cm) of conversion into a muon pair and into e+ e- in each block."""
    pairs = np.column_stack([m.atoms * cross_section(energy, m.protons, m.nucleons) for m in layout.materials])
    electrons = np.array([1 / (E_E_PAIR_PATH * m.radiation_length) for m in layout.materials])
    return pairs, np.broadcast_to(electrons, pairs.shape)


def pair_muons(photons: Hadrons, layout: Layout, rng: np.random.Generator) -> Muons:
    """Both muons of the forced muon-pair conversion of each photon, at the conversion point, each weighted
    the photon's weight x P(muon pair before e+ e- and before the plane)."""
    momentum, position = photons.momentum, photons.position
    energy = momentum[:, 3]
    direction = momentum[:, :3] / np.linalg.norm(momentum[:, :3], axis=1, keepdims=True)
    lengths = layout.path_lengths(position[:, 2], direction[:, 2])
    fate = competing(lengths, *conversion_rates(layout, energy))
    rows = np.flatnonzero(fate.decay > 0)
    point = position[rows] + sample_distance(fate.take(rows), fate.decay_parts[rows], rng)[:, None] * direction[rows]
    block = layout.block(point[:, 2])
    protons = np.array([m.protons for m in layout.materials])[block]
    nucleons = np.array([m.nucleons for m in layout.materials])[block]
    x = sample_sharing(energy[rows], protons, nucleons, rng)
    shares = np.concatenate([x, 1 - x])  # mu+ first, then mu-
    muon_energy = np.maximum(np.tile(energy[rows], 2) * shares, MUON_MASS)
    theta = _polar_angles(muon_energy, rng)
    phi = rng.uniform(0.0, 2 * np.pi, len(rows))
    phi = np.concatenate([phi, phi + np.pi])
    local = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    size = np.sqrt(muon_energy**2 - MUON_MASS**2)[:, None]
    both = np.concatenate([rows, rows])
    return Muons(
        pdg=np.repeat([-13.0, 13.0], len(rows)),
        position=np.concatenate([point, point]),
        momentum=rotate_to(local * size, direction[both]),
        weight=photons.weight[both] * fate.decay[both],
        kind=np.full(2 * len(rows), KINDS.index("em_pair"), dtype=np.int8),
        origin=photons.origin[both],
        generation=photons.generation[both],
        bias=photons.bias[both],
    )
