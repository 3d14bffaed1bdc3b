"""The sample driver: protons on target split into seeded tasks, run over worker processes, merged.

A task is ``task_pot`` protons with freshly initialised Pythia instances and random streams derived
from ``(seed, task index)``, so the sample depends on the seed, the POT and the settings only: not on
the number of workers, nor on which worker ran which task (results are merged in task order).
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from multiprocessing.queues import Queue
from queue import Empty

import numpy as np
from tqdm import tqdm

from service.contract.muons import COLUMNS, DTYPE
from service.samples import Sample
from training.reference.biasing import Biasing
from training.reference.cascade import Cascade, tracked
from training.reference.decays import long_lived_table
from training.reference.em_pairs import PHOTON
from training.reference.events import (
    KINDS,
    ORIGINS,
    Hadrons,
    Muons,
    Particles,
    branching_product,
    descends_from,
    forced_weight,
)
from training.reference.geometry import MUON_MASS, Layout, interaction_points
from training.reference.pythia_setup import (
    CASCADE,
    DECAYERS,
    INSTANCES,
    NUCLEONS,
    RESONANCE,
    SEEDS,
    Generator,
    decays_settings,
    pythia_settings,
)
from training.reference.redecay import redecay
from training.reference.settings import BLOCKS, SourceSettings

_BATCH = 5000  # protons (or forced events) per batch: bounds the memory of the awkward arrays


@dataclass(frozen=True)
class Tally:
    """What the metadata needs of the muons that passed the selection, before equalising: summed weights
    by source (``origin/kind``) and by generation, their number and their smallest and largest weight.
    Tasks add theirs up, so no task ships its millions of selected muons back."""

    sources: Counter[str]
    generations: Counter[str]
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, muons: Muons) -> Tally:
        w = muons.weight
        return cls(by_source(muons, w), by_generation(muons, w), len(w), w.min(initial=np.inf), w.max(initial=-np.inf))

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.sources + other.sources,
            self.generations + other.generations,
            self.n + other.n,
            min(self.low, other.low),
            max(self.high, other.high),
        )


@dataclass(frozen=True)
class Block:
    """Muons of one task after selection and equalisation, with where each comes from, the tally of
    the selected muons before equalising, and the rows of each batch (consecutive in ``muons``) with
    the run it belongs to: batches share no proton, so they are independent draws, while muons of one
    shower are not (:mod:`training.evaluation.showers`)."""

    muons: np.ndarray
    kept: Muons
    tally: Tally
    batch_rows: np.ndarray
    batch_runs: list[str]


def _events_per_run(pot: int, settings: SourceSettings) -> dict[str, tuple[int, float]]:
    """Events of each forced run in a task of ``pot`` protons, and the weight of one in interactions."""
    plan = {}
    for run, per_pot, fraction in (
        (RESONANCE, settings.resonance_events_per_pot, 1.0),
        ("charm", settings.charm_events_per_pot, settings.charm_fraction),
        ("beauty", settings.beauty_events_per_pot, settings.beauty_fraction),
    ):
        n = max(1, round(pot * per_pot * Biasing(settings).forced_factor(run)))
        plan[run] = (n, fraction * pot / n)
    return plan


def _primaries(
    generator: Generator, run: str, n: int, layout: Layout, rng: np.random.Generator
) -> Iterator[tuple[Particles, np.ndarray, int]]:
    """``n`` primary 400 GeV proton collisions in batches: Pythia's particles, each event's
    interaction point, on a proton or neutron as the material at that point has them, and the batch."""
    settings = generator.settings
    for start in range(0, n, _BATCH):
        points = interaction_points(min(_BATCH, n - start), layout, settings, rng)
        on_proton = rng.uniform(size=len(points)) < layout.proton_fraction(points[:, 2])
        for nucleon, rows in zip(NUCLEONS, (np.flatnonzero(on_proton), np.flatnonzero(~on_proton)), strict=True):
            done = 0
            while done < len(rows):  # Pythia skips an event it fails (rarely): ask again for the rest
                batch = generator.pythia(run, nucleon).nextBatch(len(rows) - done, "skip")
                yield Particles.from_batch(batch), points[rows[done : done + len(batch)]], start // _BATCH
                done += len(batch)


def _first_generation(particles: Particles, origin: np.ndarray, floor: float) -> Hadrons:
    """The long-lived hadrons and the photons of primary collisions, at their production points."""
    collected = tracked(particles.pid) | (particles.pid == PHOTON)
    rows = np.flatnonzero((particles.status > 0) & collected & (particles.momentum[:, 3] > floor))
    ones = np.ones(len(rows))
    return Hadrons(
        pid=particles.pid[rows],
        momentum=particles.momentum[rows],
        position=origin[particles.event[rows]] + particles.vertex[rows],
        weight=ones,
        origin=np.zeros(len(rows), dtype=np.int8),
        generation=ones.astype(np.int8),
        bias=ones,
    )


def _forced_muons(
    particles: Particles,
    origin: np.ndarray,
    generator: Generator,
    run: str,
    event_weight: float,
    biasing: Biasing,
    rng: np.random.Generator,
) -> Muons:
    """Pythia's muons that descend from a forced decay, at their production vertex; those of a forced hadron
    in reach of the tail-biased region come from its split decays instead (:mod:`training.reference.redecay`)."""
    branching = generator.branching[run]
    bias = 1 / biasing.forced_factor(run)  # the biased run's event weight over the unbiased source's
    rows = np.flatnonzero((particles.status > 0) & (np.abs(particles.pid) == 13))
    split = biasing.split_in_reach(run, particles.pid, particles.momentum) & (particles.status < 0)
    if split.any():
        rows = rows[~descends_from(particles, rows, split)]
    weight = forced_weight(particles, rows, branching) * event_weight
    rows, weight = rows[weight > 0], weight[weight > 0]
    hadrons, splits = np.flatnonzero(split), biasing.forced_splits(run)
    again = redecay(generator.decays[run], branching, particles.pid[hadrons], particles.momentum[hadrons], splits, rng)
    above, _ = branching_product(particles, hadrons, branching)  # forced decays that made the hadron
    parent = hadrons[again.hadron]
    codes = np.zeros(len(rows) + len(parent), dtype=np.int8)
    return Muons(
        pdg=np.concatenate([particles.pid[rows].astype(float), again.pdg]),
        position=np.concatenate(
            [
                origin[particles.event[rows]] + particles.vertex[rows],
                origin[particles.event[parent]] + particles.vertex[parent] + again.offset,
            ]
        ),
        momentum=np.concatenate([particles.momentum[rows, :3], again.momentum]),
        weight=np.concatenate([weight, again.weight * above[again.hadron] * event_weight]),
        kind=codes + KINDS.index(run),
        origin=codes,
        generation=codes + 1,
        bias=np.concatenate([np.full(len(rows), bias), np.full(len(parent), bias / splits)]),
    )


def selected(muons: Muons, layout: Layout, settings: SourceSettings) -> np.ndarray:
    """SHiP's selection: the muon crosses the exit plane inside the sensitive box with kinetic energy
    above the cut after its continuous energy loss in the rest of the target and the absorber."""
    kinetic = layout.exit_energy(muons.position, muons.momentum) - MUON_MASS
    return layout.crosses_exit(muons.position, muons.momentum) & (kinetic > settings.exit_kinetic_energy)


def run_task(settings: SourceSettings, seed: int, index: int, pot: int, progress: Callable[[int], object]) -> Block:
    """The cascade of ``pot`` protons and the forced runs of one task; the muons that pass SHiP's
    selection, equalised at the weight floor. ``progress`` is told the protons done after each batch."""
    sequence = np.random.SeedSequence([seed, index])
    generator = Generator(settings, sequence.generate_state(SEEDS) % 900_000_000 + 1)
    rng = np.random.default_rng(sequence)
    layout = Layout.from_settings(settings)
    cascade = Cascade(generator, layout, long_lived_table(generator.pythias[CASCADE, NUCLEONS[0]]), rng)
    parts: list[Muons] = []
    part_batches: list[int] = []  # the batch each part comes from, numbered across the task's runs
    batch_runs: list[str] = []

    def first_batch(run: str, n: int) -> int:
        """Number the batches of a run of ``n`` events on from those already numbered."""
        first = len(batch_runs)
        batch_runs.extend([run] * -(-n // _BATCH))
        return first

    first = first_batch(CASCADE, pot)
    for particles, origin, batch in _primaries(generator, CASCADE, pot, layout, rng):
        hadrons = _first_generation(particles, origin, cascade.hadron_floor)
        found = cascade.run(cascade.biasing.primary_roulette(hadrons, rng))
        parts += found
        part_batches += [first + batch] * len(found)
        progress(len(origin))
    for run, (n_events, event_weight) in _events_per_run(pot, settings).items():
        first = first_batch(run, n_events)
        for particles, origin, batch in _primaries(generator, run, n_events, layout, rng):
            forced = _forced_muons(particles, origin, generator, run, event_weight, cascade.biasing, rng)
            parts.append(forced)
            part_batches.append(first + batch)
    muons = Muons.concatenate(parts)
    batch_of = np.repeat(np.array(part_batches, dtype=np.int64), [len(part.weight) for part in parts])
    chosen = np.flatnonzero(selected(muons, layout, settings))
    muons, batch_of = muons.take(chosen), batch_of[chosen]
    if np.any(muons.weight > 1.0):
        raise RuntimeError(f"weight {muons.weight.max()} above 1: raise the forced runs' events per POT")
    floor = cascade.biasing.floors(muons.momentum)
    rows = np.flatnonzero((muons.weight >= floor) | (rng.uniform(size=len(muons.weight)) * floor < muons.weight))
    floor = floor[rows]
    kept = muons.take(rows)
    table = np.empty((len(kept.weight), len(COLUMNS)), dtype=DTYPE)
    table[:, 0] = kept.pdg
    table[:, 1:4] = kept.position
    table[:, 4:7] = kept.momentum
    table[:, 7] = np.maximum(kept.weight, floor)
    batch_rows = np.bincount(batch_of[rows], minlength=len(batch_runs))
    return Block(table, kept, Tally.of(muons), batch_rows, batch_runs)


_PROGRESS: Queue[int] | None = None  # a worker's channel to the progress bar


def _init_worker(queue: Queue[int]) -> None:
    global _PROGRESS
    _PROGRESS = queue


def _task(settings: SourceSettings, seed: int, task: tuple[int, int]) -> Block:
    assert _PROGRESS is not None
    return run_task(settings, seed, *task, progress=_PROGRESS.put)


def _tasks(pot: int, task_pot: int) -> list[tuple[int, int]]:
    """(index, protons) of each task: full tasks and a last partial one."""
    return [(i, min(task_pot, pot - start)) for i, start in enumerate(range(0, pot, task_pot))]


def generate(
    pot: int, seed: int, settings: SourceSettings | None = None, workers: int = 1, progress: bool = True
) -> Sample:
    """Muons from ``pot`` protons on target, with metadata; identical for identical (seed, pot, settings)."""
    if pot < 1:
        raise ValueError(f"pot must be at least 1, got {pot}")
    settings = settings or SourceSettings()
    tasks = _tasks(pot, settings.task_pot)
    bar = tqdm(total=pot, unit="POT", unit_scale=True, file=sys.stderr, disable=not progress, mininterval=2.0)
    with bar:
        if workers <= 1:
            blocks = [run_task(settings, seed, *task, progress=bar.update) for task in tasks]
        else:
            blocks = _run_pool(settings, seed, tasks, workers, bar)
    return _assemble(blocks, pot, seed, settings)


def _run_pool(
    settings: SourceSettings, seed: int, tasks: list[tuple[int, int]], workers: int, bar: tqdm
) -> list[Block]:
    """Tasks over worker processes; their progress reports come back through a queue."""
    context = multiprocessing.get_context("spawn")  # no Pythia state or threads inherited from this process
    queue: Queue[int] = context.Queue()
    with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(queue,)) as pool:
        result = pool.map_async(partial(_task, settings, seed), tasks, chunksize=1)
        while not result.ready():
            with suppress(Empty):
                bar.update(queue.get(timeout=0.5))
        blocks = result.get()
    bar.update(bar.total - bar.n)  # reports still in flight when the workers stopped
    return blocks


def _shares(sums: Counter[str]) -> dict[str, float]:
    """Each key's share of the total, keys sorted."""
    total = sum(sums.values())
    return {key: sums[key] / total if total else 0.0 for key in sorted(sums)}


def by_source(muons: Muons, values: np.ndarray) -> Counter[str]:
    """Sums of ``values`` by where each muon comes from, keyed ``origin/kind``: e.g. ``primary/pi``,
    ``cascade/K`` (a later collision in the target), ``absorber/pi`` (a collision in the hadron
    absorber), ``primary/charm``."""
    codes = muons.origin.astype(np.int64) * len(KINDS) + muons.kind
    sums = np.bincount(codes, weights=values, minlength=len(ORIGINS) * len(KINDS))
    counts = np.bincount(codes, minlength=len(sums))
    return Counter(
        {f"{ORIGINS[c // len(KINDS)]}/{KINDS[c % len(KINDS)]}": float(sums[c]) for c in np.flatnonzero(counts)}
    )


def by_generation(muons: Muons, values: np.ndarray) -> Counter[str]:
    """Sums of ``values`` by the generation of the collision that made each muon's parent (1: the primary)."""
    sums = np.bincount(muons.generation.astype(np.int64), weights=values)
    counts = np.bincount(muons.generation.astype(np.int64), minlength=len(sums))
    return Counter({str(g): float(sums[g]) for g in np.flatnonzero(counts)})


def _spread(n: int, low: float, high: float) -> dict[str, float]:
    return {"n": n, "min": float(low), "max": float(high)} if n else {"n": 0}


def _assemble(blocks: list[Block], pot: int, seed: int, settings: SourceSettings) -> Sample:
    muons = np.concatenate([block.muons for block in blocks])
    kept = Muons.concatenate([block.kept for block in blocks])
    tally = sum((block.tally for block in blocks[1:]), blocks[0].tally)
    weight = muons[:, -1].astype(np.float64)

    layout = Layout.from_settings(settings)
    biasing = Biasing(settings)
    metadata = {
        "generator": "muongan sample (training.reference): Pythia 8 hadron cascade in a SHiP-like Mo/W target "
        "and iron hadron absorber, with muon pairs of its photons; muons with kinetic energy > "
        f"{settings.exit_kinetic_energy:g} GeV at the absorber exit (z = {layout.exit_z:g} cm), "
        "stored at their production vertex and momentum"
        + (
            f"; TAIL-BIASED towards |p| > {settings.tail_momentum:g} GeV/c and pT > {settings.tail_pt:g} GeV/c "
            "with exact weights (see biasing)"
            if biasing.on
            else ""
        ),
        # How the run was biased (training/reference/biasing.py), or {"mode": "none"}.
        "biasing": biasing.describe(),
        "muons_per_pot": repr(float(weight.sum() / pot)),
        "pot": str(pot),
        "seed": str(seed),
        "generator_settings": settings.to_json(),
        "pythia_settings": json.dumps(
            {f"{run}/{nucleon}": pythia_settings(run, nucleon, settings) for run, nucleon in INSTANCES}
            | (
                {f"decays/{runs[0]}": decays_settings(runs[0], settings) for runs in DECAYERS.values()}
                if biasing.on
                else {}
            )
        ),
        "beam_spot": "none: FairShip's MuonBackGenerator paints it (run_simScript.py --SmearBeam 0.8 --PaintBeam 5)"
        if settings.beam_sigma == 0 and settings.beam_paint_radius == 0
        else f"Gaussian sigma {settings.beam_sigma} cm plus a point on the circle of radius "
        f"{settings.beam_paint_radius} cm: run FairShip with --SmearBeam 0 --PaintBeam 0",
        "missing_sources": "muon pairs from the photons of e+ e- showers and from e+ e- -> mu mu; charm and "
        "beauty of the cascade's later collisions: see training/reference/README.md",
        # Share of the muon rate (sum of weights after the selection, before equalisation), by where the
        # muon comes from, and by the generation of the collision that made its parent; shares of rows.
        "source_fractions": json.dumps(_shares(tally.sources)),
        "generation_fractions": json.dumps(_shares(tally.generations)),
        "source_row_fractions": json.dumps(_shares(by_source(kept, np.ones(len(kept.weight))))),
        "weights_before_equalising": json.dumps(_spread(tally.n, tally.low, tally.high)),
        "weights_after_equalising": json.dumps(
            _spread(len(weight), weight.min(initial=np.inf), weight.max(initial=-np.inf))
        ),
        # Rows of each batch (disjoint protons or forced events), in file order, and its run: what
        # shower-aware errors of rates are taken over (training.evaluation.showers).
        BLOCKS: json.dumps(
            {
                "rows": [int(n) for block in blocks for n in block.batch_rows],
                "run": [run for block in blocks for run in block.batch_runs],
            }
        ),
        "versions": json.dumps({name: version(name) for name in ("muongan", "pythia8mc", "numpy")}),
    }
    return Sample(muons, metadata)
