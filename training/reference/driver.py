"""The sample driver: protons on target split into seeded tasks, run over worker processes, merged.

A task is ``task_pot`` protons with freshly initialised Pythia instances and random streams derived
from ``(seed, task index)``, so the sample depends on the seed, the POT and the settings only: not on
the number of workers, nor on which worker ran which task (results are merged in task order).
"""

from __future__ import annotations

import json
import multiprocessing
import sys
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
from training.reference.decays import LongLived, decay_in_flight, long_lived_table
from training.reference.events import Particles, forced_weight
from training.reference.geometry import interaction_points
from training.reference.pythia_setup import NUCLEONS, RUNS, Generator, pythia_settings
from training.reference.settings import SourceSettings

SOURCES: tuple[str, ...] = ("pi", "K", "K0L", "resonance", "charm", "beauty")
_HADRON_SOURCE = {211: 0, 321: 1, 130: 2}
_RUN_SOURCE = {"resonance": 3, "charm": 4, "beauty": 5}
_BATCH = 5000  # events per nextBatch call: bounds the memory of the awkward arrays


@dataclass(frozen=True)
class Block:
    """Muons of one task after equalisation, their source codes, and the raw weights before it."""

    muons: np.ndarray
    source: np.ndarray
    raw_weight: np.ndarray
    raw_source: np.ndarray


def _events_per_run(pot: int, settings: SourceSettings) -> dict[str, tuple[int, float]]:
    """Events of each run in a task of ``pot`` protons, and the weight of one of them in interactions."""
    plan = {"soft": (pot, 1.0)}
    for run, per_pot, fraction in (
        ("resonance", settings.resonance_events_per_pot, 1.0),
        ("charm", settings.charm_events_per_pot, settings.charm_fraction),
        ("beauty", settings.beauty_events_per_pot, settings.beauty_fraction),
    ):
        n = max(1, round(pot * per_pot))
        plan[run] = (n, fraction * pot / n)
    return plan


def _batches(generator: Generator, run: str, n: int, rng: np.random.Generator) -> Iterator[Particles]:
    """``n`` events of a run, each on a proton or a neutron in the target's proportion."""
    settings = generator.settings
    on_neutron = rng.binomial(n, 1.0 - settings.target_protons / settings.target_nucleons)
    for nucleon, count in zip(NUCLEONS, (n - on_neutron, on_neutron), strict=True):
        for start in range(0, count, _BATCH):
            yield Particles.from_batch(generator.pythias[run, nucleon].nextBatch(min(_BATCH, count - start)))


Muons = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pdg, position, momentum, w, source


def _in_flight_muons(
    particles: Particles, origin: np.ndarray, table: dict[int, LongLived], p_min: float, rng: np.random.Generator
) -> Muons:
    """One weighted muon per final pi, K, K0L above ``p_min``, starting at its sampled decay point."""
    rows = np.flatnonzero(
        (particles.status > 0) & np.isin(np.abs(particles.pid), tuple(table)) & (particles.momentum[:, 3] > p_min)
    )
    hadron = particles.momentum[rows]
    decayed = decay_in_flight(hadron, particles.pid[rows], table, rng)
    direction = hadron[:, :3] / np.linalg.norm(hadron[:, :3], axis=1, keepdims=True)
    position = origin[particles.event[rows]] + particles.vertex[rows] + decayed.distance[:, None] * direction
    source = np.array([_HADRON_SOURCE[abs(p)] for p in particles.pid[rows]], dtype=np.int8)
    return decayed.pdg, position, decayed.momentum, decayed.weight, source


def _forced_muons(
    particles: Particles, origin: np.ndarray, branching: dict[int, float], event_weight: float, source: int
) -> Muons:
    """Pythia's muons that descend from a forced decay, at their production vertex."""
    rows = np.flatnonzero((particles.status > 0) & (np.abs(particles.pid) == 13))
    weight = forced_weight(particles, rows, branching) * event_weight
    rows, weight = rows[weight > 0], weight[weight > 0]
    position = origin[particles.event[rows]] + particles.vertex[rows]
    codes = np.full(len(rows), source, dtype=np.int8)
    return particles.pid[rows].astype(float), position, particles.momentum[rows, :3], weight, codes


def run_task(settings: SourceSettings, seed: int, index: int, pot: int, progress: Callable[[int], object]) -> Block:
    """All runs of one task; muons with |p| above the cut, equalised at the weight floor.

    ``progress`` is told the protons on target done after each batch of interactions.
    """
    sequence = np.random.SeedSequence([seed, index])
    generator = Generator(settings, sequence.generate_state(len(RUNS) * len(NUCLEONS)) % 900_000_000 + 1)
    table = long_lived_table(generator.pythias["soft", NUCLEONS[0]], settings)
    rng = np.random.default_rng(sequence)
    parts: list[Muons] = []
    for run, (n_events, event_weight) in _events_per_run(pot, settings).items():
        for particles in _batches(generator, run, n_events, rng):
            n_interactions = int(particles.event.max(initial=-1)) + 1
            origin = interaction_points(n_interactions, settings, rng)
            if run == "soft":
                parts.append(_in_flight_muons(particles, origin, table, settings.p_min, rng))
                progress(n_interactions)
            else:
                parts.append(_forced_muons(particles, origin, generator.branching[run], event_weight, _RUN_SOURCE[run]))
    pdg, position, momentum, weight, source = (np.concatenate(column) for column in zip(*parts, strict=True))
    fast = np.linalg.norm(momentum, axis=1) > settings.p_min
    pdg, position, momentum, weight, source = pdg[fast], position[fast], momentum[fast], weight[fast], source[fast]
    if np.any(weight > 1.0):
        raise RuntimeError(f"weight {weight.max()} above 1: raise the forced runs' events per POT")
    kept = (weight >= settings.weight_floor) | (rng.uniform(size=len(weight)) * settings.weight_floor < weight)
    muons = np.empty((int(kept.sum()), len(COLUMNS)), dtype=DTYPE)
    muons[:, 0] = pdg[kept]
    muons[:, 1:4] = position[kept]
    muons[:, 4:7] = momentum[kept]
    muons[:, 7] = np.maximum(weight[kept], settings.weight_floor)
    return Block(muons, source[kept], weight, source)


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


def _assemble(blocks: list[Block], pot: int, seed: int, settings: SourceSettings) -> Sample:
    muons = np.concatenate([block.muons for block in blocks])
    source = np.concatenate([block.source for block in blocks])
    raw_weight = np.concatenate([block.raw_weight for block in blocks])
    raw_source = np.concatenate([block.raw_source for block in blocks])
    weight = muons[:, -1].astype(np.float64)

    def by_source(values: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        total = values.sum()
        return {name: float(values[codes == i].sum() / total) if total else 0.0 for i, name in enumerate(SOURCES)}

    def spread(values: np.ndarray) -> dict[str, float]:
        return {"min": float(values.min()), "max": float(values.max())} if len(values) else {}

    metadata = {
        "generator": "muongan sample (training.reference): Pythia 8 on a thick Mo-like target",
        "muons_per_pot": repr(float(weight.sum() / pot)),
        "pot": str(pot),
        "seed": str(seed),
        "generator_settings": settings.to_json(),
        "pythia_settings": json.dumps(
            {f"{run}/{nucleon}": pythia_settings(run, nucleon, settings) for run in RUNS for nucleon in NUCLEONS}
        ),
        # Share of the muon rate (sum of weights, before equalisation) and of the rows, per source.
        "source_fractions": json.dumps(by_source(raw_weight, raw_source)),
        "source_row_fractions": json.dumps(by_source(np.ones(len(source)), source)),
        "weights_before_equalising": json.dumps({"n": len(raw_weight), **spread(raw_weight)}),
        "weights_after_equalising": json.dumps({"n": len(weight), **spread(weight)}),
        "versions": json.dumps({name: version(name) for name in ("muongan", "pythia8mc", "numpy")}),
    }
    return Sample(muons, metadata)
