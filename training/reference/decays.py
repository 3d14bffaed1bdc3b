"""Decays in flight of pi+-, K+- and K0L into a muon: the channels and the muon's momentum.

In dense material a 20 GeV pion interacts long before it decays (decay length ~1 km against ~20 cm).
Simulating the race would keep one pion in ~10^4; instead every such hadron decays into a muon channel
at a point drawn given that it decayed first (:mod:`training.reference.geometry`), and the muon carries
weight P(decay first) x BR(muon channels). This module does the decay itself, in the rest frame, boosted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pythia8mc

LONG_LIVED: tuple[int, ...] = (211, 321, 130)
MUON = 13
MUON_MASS = 0.1056584  # GeV
MM_TO_CM = 0.1


@dataclass(frozen=True)
class MuonChannel:
    """A decay channel with a muon: its branching ratio, the muon's PDG code for the particle (not the
    antiparticle) and the masses of the other products (one for two-body, two for three-body)."""

    branching: float
    muon_pdg: int
    others: tuple[float, ...]


@dataclass(frozen=True)
class LongLived:
    pid: int
    mass: float
    ctau: float  # cm
    channels: tuple[MuonChannel, ...]

    @property
    def branching(self) -> float:
        return sum(channel.branching for channel in self.channels)


def long_lived_table(pythia: pythia8mc.Pythia) -> dict[int, LongLived]:
    """Masses, lifetimes and two- and three-body muon channels from Pythia's particle data.

    Four-body muon channels (BR ~1e-5 of K+) are left out.
    """
    data = pythia.particleData
    table = {}
    for pid in LONG_LIVED:
        entry = data.particleDataEntryPtr(pid)
        channels = []
        for i in range(entry.sizeChannels()):
            channel = entry.channel(i)
            products = [channel.product(j) for j in range(channel.multiplicity())]
            muons = [p for p in products if abs(p) == MUON]
            if len(muons) != 1 or len(products) > 3:
                continue
            others = list(products)
            others.remove(muons[0])
            channels.append(MuonChannel(channel.bRatio(), muons[0], tuple(data.m0(p) for p in others)))
        table[pid] = LongLived(pid, entry.m0(), entry.tau0() * MM_TO_CM, tuple(channels))
    return table


def rest_frame_energy(mass: float, others: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """The muon's energy in the parent's rest frame: fixed for two bodies, flat Dalitz plot for three.

    Flat phase space is uniform in (E_mu, E_2); points outside the kinematic boundary (momenta that do
    not close a triangle) are redrawn.
    """
    m1 = MUON_MASS
    if len(others) == 1:
        return np.full(n, (mass**2 + m1**2 - others[0] ** 2) / (2 * mass))
    m2, m3 = others
    e1_max = (mass**2 + m1**2 - (m2 + m3) ** 2) / (2 * mass)
    e2_max = (mass**2 + m2**2 - (m1 + m3) ** 2) / (2 * mass)
    energy = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        e1 = rng.uniform(m1, e1_max, len(todo))
        e2 = rng.uniform(m2, e2_max, len(todo))
        e3 = mass - e1 - e2
        p1, p2 = np.sqrt(e1**2 - m1**2), np.sqrt(e2**2 - m2**2)
        p3 = np.sqrt(np.clip(e3**2 - m3**2, 0.0, None))
        inside = (e3 >= m3) & (np.abs(p1 - p2) <= p3) & (p3 <= p1 + p2)
        energy[todo[inside]] = e1[inside]
        todo = todo[~inside]
    return energy


def isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    cos_theta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.column_stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta])


def boost(energy: np.ndarray, momentum: np.ndarray, parent: np.ndarray, mass: float) -> np.ndarray:
    """Lorentz-boost rest-frame four-momenta ``(energy, momentum)`` by the parent's ``(px, py, pz, E)``."""
    beta = parent[:, :3] / parent[:, 3:4]
    gamma = parent[:, 3:4] / mass
    beta_p = np.sum(beta * momentum, axis=1, keepdims=True)
    return momentum + beta * (gamma**2 / (gamma + 1.0) * beta_p + gamma * energy[:, None])


def decay_rate(momentum: np.ndarray, pid: np.ndarray, table: dict[int, LongLived]) -> np.ndarray:
    """Decays per cm of flight, m / (|p| c tau), of hadrons with (px, py, pz, E); 0 for those not in the table."""
    rate = np.zeros(len(pid))
    p = np.linalg.norm(momentum[:, :3], axis=1)
    for hadron in table.values():
        rows = np.abs(pid) == hadron.pid
        rate[rows] = hadron.mass / (p[rows] * hadron.ctau)
    return rate


def decay_to_muons(
    momentum: np.ndarray, pid: np.ndarray, table: dict[int, LongLived], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decay each hadron (rows of ``momentum`` = px, py, pz, E; ``|pid|`` in the table) into a muon channel
    picked by branching ratio: the muon's PDG code, its (px, py, pz), and the summed BR of the channels."""
    n = len(pid)
    pdg, muon, branching = np.empty(n), np.empty((n, 3)), np.empty(n)
    for hadron in table.values():
        rows = np.flatnonzero(np.abs(pid) == hadron.pid)
        if not len(rows):
            continue
        branching[rows] = hadron.branching
        fractions = np.array([channel.branching for channel in hadron.channels])
        picked = rng.choice(len(fractions), size=len(rows), p=fractions / fractions.sum())
        energy = np.empty(len(rows))
        for k, channel in enumerate(hadron.channels):
            mine = picked == k
            energy[mine] = rest_frame_energy(hadron.mass, channel.others, int(mine.sum()), rng)
            pdg[rows[mine]] = channel.muon_pdg * np.sign(pid[rows[mine]])
        p_star = np.sqrt(energy**2 - MUON_MASS**2)[:, None] * isotropic(len(rows), rng)
        muon[rows] = boost(energy, p_star, momentum[rows], hadron.mass)
    return pdg, muon, branching
