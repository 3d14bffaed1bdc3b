"""The hadron cascade in the target and the absorber, generation by generation.

Every long-lived hadron (pi+-, K+-, K0L, p, n and antiparticles) of a generation faces two competing
fates on its straight path to the exit plane (:func:`training.reference.geometry.fates`): it decays
first, or it interacts first. Both are followed, with exact weights instead of a coin toss: a pi, K or
K0L yields a muon at a decay point drawn given that it decayed first, weighted by that probability and
the muon branching ratio; and the hadron collides at a point drawn given that it interacted first,
weighted by that probability, making the next generation with Pythia at its energy and flavour on a
proton or neutron of the local material, turned into its direction. The cascade ends where no hadron
has the energy to make a muon that could still leave the absorber above the cut.

The energy bound is physics, not a tuning knob: a muon made at depth z needs at least the energy it
would lose flying straight to the exit plane, and no descendant of a hadron carries more than the
hadron's energy plus the struck nucleon's mass. ``cascade_margin`` (1 GeV, about four interaction
lengths of iron's muon energy loss) allows for descendants that fly further downstream before decaying.

Collisions just above that bound rarely lead to a muon but cost as much Pythia time as any: they are
played as Russian roulette, made with probability ``spare / roulette_scale`` (at least ``roulette_min``)
where ``spare`` is the energy above the bound, and their products' weights divided by it. Unbiased; it
trades a little variance in late generations for most of the collisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pythia8mc

from training.reference.biasing import Biasing
from training.reference.decays import LongLived, decay_rate, decay_to_muons
from training.reference.em_pairs import PHOTON, pair_muons
from training.reference.events import KINDS, ORIGINS, Hadrons, Muons
from training.reference.geometry import MUON_MASS, Fates, Layout, fates, rotate_to, sample_distance
from training.reference.pythia_setup import CASCADE, MUON, NUCLEON_MASS, NUCLEONS, RESONANCE, Generator
from training.reference.redecay import redecay

TRACKED = frozenset((211, 321, 130, 2212, 2112))  # and their antiparticles
_COLLECTED = TRACKED | {PHOTON}  # what a collision hands on: hadrons to follow, photons to convert
_KIND = {211: KINDS.index("pi"), 321: KINDS.index("K"), 130: KINDS.index("K0L")}
_TRIES = 10  # Pythia may fail an event now and then; it then tries again with fresh random numbers


def tracked(pid: np.ndarray) -> np.ndarray:
    return np.isin(np.abs(pid), tuple(TRACKED))


def _next(pythia: pythia8mc.Pythia, beam: int, target: int, energy: float) -> None:
    """One collision of ``beam`` at ``energy`` GeV on ``target`` at rest (beam along +z) into ``pythia.event``."""
    pythia.setBeamIDs(beam, target)
    pythia.setKinematics(energy, NUCLEON_MASS[target])
    if not any(pythia.next() for _ in range(_TRIES)):
        raise RuntimeError(f"Pythia failed {_TRIES} times on {beam} at {energy:.1f} GeV on {target}")


def collide(
    pythia: pythia8mc.Pythia, pid: np.ndarray, nucleon: np.ndarray, energy: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One collision per hadron: the index of the collision, PDG id and (px, py, pz, E) of each final
    tracked hadron and photon above ``floor`` GeV.

    One ``next()`` per collision (``nextBatch`` takes one beam for the whole batch); the final
    particles are read in one pass, the only per-particle Python loop of the source.
    """
    event = pythia.event
    parents: list[int] = []
    ids: list[int] = []
    momenta: list[tuple[float, float, float, float]] = []
    for i, args in enumerate(zip(pid.tolist(), nucleon.tolist(), energy.tolist(), strict=True)):
        _next(pythia, *args)
        for particle in event:
            if particle.e() > floor and particle.isFinal() and abs(particle.id()) in _COLLECTED:
                parents.append(i)
                ids.append(particle.id())
                momenta.append((particle.px(), particle.py(), particle.pz(), particle.e()))
    return np.array(parents, dtype=np.int64), np.array(ids, dtype=np.int64), np.array(momenta).reshape(-1, 4)


@dataclass(frozen=True)
class Forced:
    """What the replays of collisions in the forced-resonance instance give: each muon of a forced decay
    (the collision it comes from, PDG id, (px, py, pz), forced branching fraction), and each resonance in
    reach of the tail-biased region, whose muons are left to its split decays (collision, PDG id,
    (px, py, pz, E))."""

    parent: np.ndarray
    pdg: np.ndarray
    momentum: np.ndarray
    fraction: np.ndarray
    split_parent: np.ndarray
    split_pid: np.ndarray
    split_momentum: np.ndarray


def forced_muons(
    pythia: pythia8mc.Pythia,
    pid: np.ndarray,
    nucleon: np.ndarray,
    energy: np.ndarray,
    branching: dict[int, float],
    in_reach: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Forced:
    """The same collisions in an instance whose resonances decay only into muon channels; ``in_reach``
    tells from (PDG ids, (px, py, pz, E)) which resonances are split instead."""
    event = pythia.event
    muons: list[tuple[float, ...]] = []  # collision, id, px, py, pz, fraction, its resonance's row in ``found``
    resonances: list[tuple[float, ...]] = []  # collision, id, px, py, pz, E
    for i, args in enumerate(zip(pid.tolist(), nucleon.tolist(), energy.tolist(), strict=True)):
        _next(pythia, *args)
        found_at: dict[int, int] = {}  # a resonance's row in the event -> its row in ``resonances``
        for row, particle in enumerate(event):
            if abs(particle.id()) in branching:
                found_at[row] = len(resonances)
                resonances.append((i, particle.id(), particle.px(), particle.py(), particle.pz(), particle.e()))
            elif abs(particle.id()) == MUON and particle.isFinal() and particle.mother1() in found_at:
                fraction = branching[abs(event[particle.mother1()].id())]
                muon = (i, particle.id(), particle.px(), particle.py(), particle.pz(), fraction)
                muons.append((*muon, found_at[particle.mother1()]))
    found = np.array(resonances).reshape(-1, 6)
    split = in_reach(found[:, 1].astype(np.int64), found[:, 2:6])
    table = np.array(muons).reshape(-1, 7)
    table = table[~split[table[:, 6].astype(np.int64)]]
    return Forced(
        table[:, 0].astype(np.int64),
        table[:, 1],
        table[:, 2:5],
        table[:, 5],
        found[split, 0].astype(np.int64),
        found[split, 1].astype(np.int64),
        found[split, 2:6],
    )


@dataclass
class Cascade:
    """Follows hadrons to the end of their cascade; reused for every batch of a task."""

    generator: Generator
    layout: Layout
    table: dict[int, LongLived]
    rng: np.random.Generator

    def __post_init__(self) -> None:
        self.settings = self.generator.settings
        self.biasing = Biasing(self.settings)

    @property
    def muon_floor(self) -> float:
        """The least energy of a muon that can still pass the selection anywhere."""
        return self.settings.exit_kinetic_energy + MUON_MASS

    @property
    def hadron_floor(self) -> float:
        """The least hadron energy worth following: below it no descendant reaches the muon floor."""
        return self.muon_floor - max(NUCLEON_MASS.values()) - self.settings.cascade_margin

    def run(self, hadrons: Hadrons) -> list[Muons]:
        """Decay muons of every generation, from the first (``hadrons``) to the end of the cascade."""
        muons: list[Muons] = []
        for _ in range(self.settings.max_generations):
            if not len(hadrons.pid):
                return muons
            decayed, hadrons = self.step(hadrons)
            muons.append(decayed)
        raise RuntimeError(f"the cascade did not end within {self.settings.max_generations} generations")

    def step(self, hadrons: Hadrons) -> tuple[Muons, Hadrons]:
        """One generation: its decay muons, the muon pairs of its photons, and the hadrons its collisions make."""
        forward = hadrons.momentum[:, 2] > 0
        photon = hadrons.pid == PHOTON
        pairs = pair_muons(
            hadrons.take(np.flatnonzero(forward & photon & (hadrons.momentum[:, 3] > self.muon_floor))),
            self.layout,
            self.rng,
        )
        h = hadrons.take(np.flatnonzero(forward & ~photon & (hadrons.momentum[:, 3] > self.hadron_floor)))
        direction = h.momentum[:, :3] / np.linalg.norm(h.momentum[:, :3], axis=1, keepdims=True)
        rate = decay_rate(h.momentum, h.pid, self.table)
        fate = fates(self.layout, h.position[:, 2], direction[:, 2], h.pid, rate)
        children, resonances = self._collisions(h, direction, fate)
        return Muons.concatenate([self._decays(h, direction, fate, rate), resonances, pairs]), children

    def _decays(self, h: Hadrons, direction: np.ndarray, fate: Fates, rate: np.ndarray) -> Muons:
        decaying = np.flatnonzero((rate > 0) & (h.momentum[:, 3] > self.muon_floor) & (fate.decay > 0))
        splits = self.biasing.decay_splits(h.momentum[decaying])
        rows = np.repeat(decaying, splits)
        splits = np.repeat(splits, splits)
        distance = sample_distance(fate.take(rows), fate.decay_parts[rows], self.rng)
        pdg, momentum, branching = decay_to_muons(h.momentum[rows], h.pid[rows], self.table, self.rng)
        kind = np.array([_KIND[abs(p)] for p in h.pid[rows].tolist()], dtype=np.int8)
        return Muons(
            pdg=pdg,
            position=h.position[rows] + distance[:, None] * direction[rows],
            momentum=momentum,
            weight=h.weight[rows] * fate.decay[rows] * branching / splits,
            kind=kind,
            origin=h.origin[rows],
            generation=h.generation[rows],
            bias=h.bias[rows] * self.settings.decay_splits / splits,
        )

    def _collisions(self, h: Hadrons, direction: np.ndarray, fate: Fates) -> tuple[Hadrons, Muons]:
        rows = np.flatnonzero(fate.interaction > 0)
        point = (
            h.position[rows]
            + sample_distance(fate.take(rows), fate.interaction_parts[rows], self.rng)[:, None] * direction[rows]
        )
        on_proton = self.rng.uniform(size=len(rows)) < self.layout.proton_fraction(point[:, 2])
        nucleon = np.where(on_proton, NUCLEONS[0], NUCLEONS[1])
        reach = h.momentum[rows, 3] + NUCLEON_MASS[NUCLEONS[0]] - self.settings.cascade_margin
        spare = reach - self.layout.needed_energy(point[:, 2], self.muon_floor)
        weight = h.weight[rows] * fate.interaction[rows]
        # The least chance also caps a hadron's weight at 1 / roulette_min, however many roulettes its
        # ancestors survived: its muons' weights (x P(decay) x BR) then stay below 1.
        least = np.maximum(self.settings.roulette_min, weight * self.settings.roulette_min)
        base = np.clip(spare / self.settings.roulette_scale, least, 1.0)
        chance = self.biasing.collision_chance(h.momentum[rows, 3], base, least)
        # What the unbiased source's chance would have been, at the weight it would have given the hadron.
        unbiased_least = np.maximum(self.settings.roulette_min, weight / h.bias[rows] * self.settings.roulette_min)
        bias = h.bias[rows] * np.clip(spare / self.settings.roulette_scale, unbiased_least, 1.0) / chance
        worth = (spare > 0) & (self.rng.uniform(size=len(rows)) < chance)
        rows, point, nucleon, bias = rows[worth], point[worth], nucleon[worth], bias[worth]
        weight = weight[worth] / chance[worth]
        origin = np.where(
            point[:, 2] >= self.layout.absorber_start, ORIGINS.index("absorber"), ORIGINS.index("cascade")
        )
        beams, energies, generation = h.pid[rows], h.momentum[rows, 3], h.generation[rows] + 1
        parent, pid, momentum = collide(
            self.generator.pythias[CASCADE, NUCLEONS[0]], beams, nucleon, energies, self.hadron_floor
        )
        momentum[:, :3] = rotate_to(momentum[:, :3], direction[rows][parent])
        children = Hadrons(
            pid,
            momentum,
            point[parent],
            weight[parent],
            origin[parent].astype(np.int8),
            generation[parent],
            bias[parent],
        )
        # Light resonances of a share of the same collisions, in the instance that forces their muon channels.
        share = self.biasing.resonance_share(energies)
        again = np.flatnonzero(self.rng.uniform(size=len(rows)) < share)
        forced = forced_muons(
            self.generator.pythias[RESONANCE, NUCLEONS[0]],
            beams[again],
            nucleon[again],
            energies[again],
            self.generator.branching[RESONANCE],
            partial(self.biasing.split_in_reach, RESONANCE),
        )
        splits = self.biasing.forced_splits(RESONANCE)
        split = redecay(
            self.generator.decays[RESONANCE],
            self.generator.branching[RESONANCE],
            forced.split_pid,
            forced.split_momentum,
            splits,
            self.rng,
        )
        parent = again[np.concatenate([forced.parent, forced.split_parent[split.hadron]])]
        axis = direction[rows][parent]
        unsplit = np.arange(len(parent)) < len(forced.parent)
        resonances = Muons(
            pdg=np.concatenate([forced.pdg, split.pdg]),
            position=point[parent]
            + np.concatenate([np.zeros((len(forced.parent), 3)), rotate_to(split.offset, axis[~unsplit])]),
            momentum=rotate_to(np.concatenate([forced.momentum, split.momentum]), axis),
            weight=weight[parent] * np.concatenate([forced.fraction, split.weight]) / share[parent],
            kind=np.full(len(parent), KINDS.index("resonance"), dtype=np.int8),
            origin=origin[parent].astype(np.int8),
            generation=generation[parent],
            bias=bias[parent] * self.settings.cascade_resonance_fraction / share[parent] / np.where(unsplit, 1, splits),
        )
        return children, resonances
