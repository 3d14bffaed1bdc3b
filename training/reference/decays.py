"""Decays in flight of pi+-, K+- and K0L in the dense target, done once each with an exact weight.

In a target a few interaction lengths long, a 20 GeV pion interacts long before it decays (decay
length ~1 km against ~18 cm). Simulating the race would keep one pion in ~10^4; instead every such
hadron decays once into a muon channel at a decay point drawn given that it decayed first, and the
muon carries weight P(decay before interaction) x BR(muon channels). Exact in expectation, for the
first generation of hadrons (the cascade's later generations are not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pythia8mc

from training.reference.settings import SourceSettings

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
    interaction_length: float  # cm
    channels: tuple[MuonChannel, ...]

    @property
    def branching(self) -> float:
        return sum(channel.branching for channel in self.channels)


def long_lived_table(pythia: pythia8mc.Pythia, settings: SourceSettings) -> dict[int, LongLived]:
    """Masses, lifetimes and two- and three-body muon channels from Pythia's particle data.

    Four-body muon channels (BR ~1e-5 of K+) are left out.
    """
    data = pythia.particleData
    lengths = {211: settings.lambda_pion, 321: settings.lambda_kaon, 130: settings.lambda_kaon}
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
        table[pid] = LongLived(pid, entry.m0(), entry.tau0() * MM_TO_CM, lengths[pid], tuple(channels))
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


@dataclass(frozen=True)
class InFlight:
    """Muons from decays in flight, one per parent hadron (in the order of the parents given)."""

    pdg: np.ndarray
    momentum: np.ndarray  # (n, 3) GeV/c
    distance: np.ndarray  # (n,) cm from the parent's production point along its direction
    weight: np.ndarray


def decay_in_flight(
    momentum: np.ndarray, pid: np.ndarray, table: dict[int, LongLived], rng: np.random.Generator
) -> InFlight:
    """Decay each hadron (rows of ``momentum`` = px, py, pz, E; ``|pid|`` in the table) into a muon."""
    n = len(pid)
    out = InFlight(np.empty(n), np.empty((n, 3)), np.empty(n), np.empty(n))
    for hadron in table.values():
        rows = np.flatnonzero(np.abs(pid) == hadron.pid)
        if not len(rows):
            continue
        parent = momentum[rows]
        decay_length = np.linalg.norm(parent[:, :3], axis=1) / hadron.mass * hadron.ctau
        out.weight[rows] = hadron.interaction_length / (decay_length + hadron.interaction_length) * hadron.branching
        # Given that it decayed first, the distance is exponential with the summed rate of both processes.
        out.distance[rows] = rng.exponential(1.0 / (1.0 / decay_length + 1.0 / hadron.interaction_length))
        branchings = np.array([channel.branching for channel in hadron.channels])
        picked = rng.choice(len(branchings), size=len(rows), p=branchings / branchings.sum())
        energy = np.empty(len(rows))
        for k, channel in enumerate(hadron.channels):
            mine = picked == k
            energy[mine] = rest_frame_energy(hadron.mass, channel.others, int(mine.sum()), rng)
            out.pdg[rows[mine]] = channel.muon_pdg * np.sign(pid[rows[mine]])
        p_star = np.sqrt(energy**2 - MUON_MASS**2)[:, None] * isotropic(len(rows), rng)
        out.momentum[rows] = boost(energy, p_star, parent, hadron.mass)
    return out
