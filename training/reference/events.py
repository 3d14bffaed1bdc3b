"""Pythia event batches as flat numpy arrays, and the ancestry walk that weights forced decays.

``Pythia.nextBatch`` fills awkward arrays in C++; flattening them once and working on whole columns
is what makes the source fast (a Python loop over particles costs more than generating them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import awkward as ak
import numpy as np

MM_TO_CM = 0.1
_MAX_DEPTH = 8  # mu <- tau <- D_s <- D_s* <- B ... forced ancestors sit well within this


@dataclass(frozen=True)
class Particles:
    """All particles of a batch of events; ``mother`` is a global row index, -1 where there is none."""

    event: np.ndarray  # (n,) event index within the batch
    pid: np.ndarray
    status: np.ndarray
    mother: np.ndarray
    momentum: np.ndarray  # (n, 4) px, py, pz, E in GeV
    vertex: np.ndarray  # (n, 3) production vertex relative to the interaction, cm

    @classmethod
    def from_batch(cls, batch: ak.Array) -> Particles:
        prt = batch.prt
        counts = ak.to_numpy(ak.num(prt.id, axis=1))
        event = np.repeat(np.arange(len(counts)), counts)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])[event]
        local_mother = ak.to_numpy(ak.flatten(prt.mother1))
        momentum = np.column_stack([ak.to_numpy(ak.flatten(prt.p[c])) for c in ("px", "py", "pz", "e")])
        vertex = np.column_stack([ak.to_numpy(ak.fill_none(ak.flatten(prt.vProd[c]), 0.0)) for c in ("px", "py", "pz")])
        return cls(
            event=event,
            pid=ak.to_numpy(ak.flatten(prt.id)),
            status=ak.to_numpy(ak.flatten(prt.status)),
            mother=np.where(local_mother > 0, offsets + local_mother, -1),
            momentum=momentum,
            vertex=vertex * MM_TO_CM,
        )


def lookup(table: dict[int, float], ids: np.ndarray, default: float) -> np.ndarray:
    """``table[|id|]`` for each id, ``default`` where the id is not in the table."""
    if not table:
        return np.full(len(ids), default)
    keys = np.array(sorted(table))
    values = np.array([table[k] for k in keys])
    ids = np.abs(ids)
    pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
    return np.where(keys[pos] == ids, values[pos], default)


def ancestors(particles: Particles, rows: np.ndarray) -> Iterator[np.ndarray]:
    """The rows' mothers, grandmothers, ... one generation at a time; -1 once a line has no more."""
    current = particles.mother[rows]
    for _ in range(_MAX_DEPTH):
        if not np.any(current >= 0):
            return
        yield current
        current = np.where(current >= 0, particles.mother[np.maximum(current, 0)], -1)


def branching_product(
    particles: Particles, rows: np.ndarray, branching: dict[int, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Product of the forced branching fractions over each row's ancestors (1 where none was forced), and
    whether any was."""
    weight = np.ones(len(rows))
    forced = np.zeros(len(rows), dtype=bool)
    for mother in ancestors(particles, rows):
        factor = lookup(branching, particles.pid[np.maximum(mother, 0)], np.nan)
        hit = (mother >= 0) & ~np.isnan(factor)
        weight[hit] *= factor[hit]
        forced |= hit
    return weight, forced


def forced_weight(particles: Particles, rows: np.ndarray, branching: dict[int, float]) -> np.ndarray:
    """Product of the forced branching fractions over each row's ancestors; 0 where none was forced.

    A muon counts only through forced decays in these runs (the rest is covered by other runs), and the
    product keeps its expected number exact: each forced decay picked the muon path with 1/fraction too often.
    """
    weight, forced = branching_product(particles, rows, branching)
    return np.where(forced, weight, 0.0)


def descends_from(particles: Particles, rows: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Whether each row has an ancestor among the ``marked`` rows (a boolean mask over all rows)."""
    found = np.zeros(len(rows), dtype=bool)
    for mother in ancestors(particles, rows):
        found |= (mother >= 0) & marked[np.maximum(mother, 0)]
    return found


def roots(particles: Particles, rows: np.ndarray) -> np.ndarray:
    """Each row's oldest ancestor (the row itself where it has none)."""
    root = rows.copy()
    for mother in ancestors(particles, rows):
        root = np.where(mother >= 0, mother, root)
    return root


KINDS: tuple[str, ...] = ("pi", "K", "K0L", "resonance", "charm", "beauty", "em_pair")
ORIGINS: tuple[str, ...] = ("primary", "cascade", "absorber")  # the collision that made the muon's parent


@dataclass(frozen=True)
class Hadrons:
    """Long-lived hadrons (and photons, to convert) of one generation at their production points, with
    their weights."""

    pid: np.ndarray
    momentum: np.ndarray  # (n, 4) px, py, pz, E in GeV
    position: np.ndarray  # (n, 3) cm
    weight: np.ndarray
    origin: np.ndarray  # index into ORIGINS of the collision that made them
    generation: np.ndarray
    bias: np.ndarray  # weight / the weight the unbiased source would give it (training.reference.biasing)

    def take(self, rows: np.ndarray) -> Hadrons:
        return Hadrons(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class Muons:
    """Muons at their production point, before the selection, with where they come from: the parent's
    kind (index into ``KINDS``), the collision that made the parent (``ORIGINS``) and its generation
    (1 for the primary proton's collision, 2 for a collision of one of its products, ...)."""

    pdg: np.ndarray
    position: np.ndarray  # (n, 3) cm
    momentum: np.ndarray  # (n, 3) GeV/c
    weight: np.ndarray
    kind: np.ndarray
    origin: np.ndarray
    generation: np.ndarray
    bias: np.ndarray  # weight / the weight the unbiased source would give it (training.reference.biasing)

    def take(self, rows: np.ndarray) -> Muons:
        return Muons(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))

    @classmethod
    def concatenate(cls, parts: list[Muons]) -> Muons:
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))
