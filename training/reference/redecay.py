"""Forced hadrons decayed again, many times each: the tail-biased source's split of the charm and
light-resonance decays that could make a muon of SHiP's shield region (:mod:`training.reference.biasing`).

A charm hadron with the energy and pT to feed the region makes a muon there in about one decay in a
thousand; the hadron costs a whole HardQCD event, its decay a few microseconds (a tau's, ~0.3 ms).
Decaying each such hadron ``splits`` times with its run's forced channels, every muon taking 1/splits of
the weight, keeps every expectation and puts ~splits times more muons in the region per event.

All the copies go into one event record of the decays instance, decayed by one call: a Python loop over
decays would cost more than the decays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pythia8mc

from training.reference.events import Particles, forced_weight, roots


@dataclass(frozen=True)
class Redecayed:
    """Muons of the copies: the hadron each comes from, its momentum, where it starts relative to the
    hadron's production point, and its forced branching product divided by the splits."""

    hadron: np.ndarray  # (n,) index into the hadrons decayed
    pdg: np.ndarray
    momentum: np.ndarray  # (n, 3) GeV/c
    offset: np.ndarray  # (n, 3) cm
    weight: np.ndarray


def redecay(
    decays: pythia8mc.Pythia,
    branching: dict[int, float],
    pid: np.ndarray,
    momentum: np.ndarray,
    splits: int,
    rng: np.random.Generator,
) -> Redecayed:
    """Decay each hadron (``pid``, (px, py, pz, E)) ``splits`` times; the flight before each decay is drawn
    from the hadron's lifetime, as Pythia draws it in an event."""
    copies = np.repeat(np.arange(len(pid)), splits)
    if not len(copies):
        return Redecayed(copies, np.empty(0), np.empty((0, 3)), np.empty((0, 3)), np.empty(0))
    p = momentum[copies]
    mass = np.sqrt(np.maximum(p[:, 3] ** 2 - np.sum(p[:, :3] ** 2, axis=1), 0.0))
    tau0 = np.array([decays.particleData.tau0(int(i)) for i in np.abs(pid)])[copies]
    lifetime = tau0 * rng.exponential(size=len(copies))  # mm/c, Pythia's unit
    event = decays.event
    event.reset()
    for i, (ident, (px, py, pz, e), m, tau) in enumerate(
        zip(pid[copies].tolist(), p.tolist(), mass.tolist(), lifetime.tolist(), strict=True)
    ):
        event.append(ident, 1, 0, 0, px, py, pz, e, m)
        event[i + 1].tau(tau)  # row 0 is the event record's system line
    batch = decays.nextBatch(1, "skip")
    if len(batch) != 1:
        raise RuntimeError("Pythia failed to decay the hadrons it was given")
    particles = Particles.from_batch(batch)
    rows = np.flatnonzero((particles.status > 0) & (np.abs(particles.pid) == 13))
    weight = forced_weight(particles, rows, branching) / splits
    rows, weight = rows[weight > 0], weight[weight > 0]
    return Redecayed(
        hadron=copies[roots(particles, rows) - 1],
        pdg=particles.pid[rows].astype(float),
        momentum=particles.momentum[rows, :3],
        offset=particles.vertex[rows],
        weight=weight,
    )
