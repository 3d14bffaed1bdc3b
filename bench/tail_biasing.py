"""Effective sample size per CPU-second in SHiP's shield region (|p| > 100 GeV/c, pT > 3 GeV/c): the
tail-biased source (``muongan sample --bias tail``) against the unbiased one, side by side in one process.

The unbiased source puts one muon in ~1e5 protons there, too few to count in minutes, so its ESS is taken
from the biased run itself: every biased muon carries ``bias`` = its weight / the weight the unbiased source
would give it, so the unbiased source's expected sum of weights and sum of squared weights are sums over
the biased muons (E_u[sum w] = E_b[sum w_b]; E_u[sum w^2] = E_b[sum w_b max(w_u, floor)], the floor
counting the unbiased source's equalisation). Both ESS are (sum w)^2 / sum w^2 per CPU-second of this
process (Pythia's initialisation, ~10 s a task, left out: a long run pays it once per 200,000 protons).

Split decays make correlated rows that the plain ESS counts as independent; the "batch ESS" beside it is
(sum w)^2 / Var(sum w) with the variance taken over independent batches of 1,000 protons, which counts them.
Errors: bootstrap over those batches.

    .venv/bin/python bench/tail_biasing.py --pot-unbiased 20000 --pot-biased 200000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace

import numpy as np

from training.reference import driver
from training.reference.driver import Block, run_task
from training.reference.pythia_setup import SEEDS, Generator
from training.reference.settings import SourceSettings

BATCH = 1000
REGIONS = {"|p| > 100 and pT > 3 (the shield region)": (100.0, 3.0), "|p| > 100 and pT > 2": (100.0, 2.0)}


@dataclass(frozen=True)
class Run:
    block: Block
    pot: int
    cpu: float  # CPU-seconds of the simulation, initialisation left out


def _run(settings: SourceSettings, pot: int, seed: int, init: float) -> Run:
    start = time.process_time()
    block = run_task(replace(settings, task_pot=pot), seed, 0, pot, progress=lambda n: None)
    return Run(block, pot, time.process_time() - start - init)


def _init_cost(settings: SourceSettings) -> float:
    """CPU-seconds to initialise one task's Pythia instances."""
    start = time.process_time()
    Generator(settings, np.arange(1, SEEDS + 1))
    return time.process_time() - start


def _batches(run: Run) -> np.ndarray:
    return np.repeat(np.arange(len(run.block.batch_rows)), run.block.batch_rows)


def _figures(run: Run, cut: tuple[float, float], floor: float, rows: np.ndarray) -> dict[str, float]:
    """ESS of the biased run in the region, and what the unbiased source would give per POT."""
    kept = run.block.kept.take(rows)
    p = np.linalg.norm(kept.momentum, axis=1)
    inside = (p > cut[0]) & (np.hypot(kept.momentum[:, 0], kept.momentum[:, 1]) > cut[1])
    w = run.block.muons[rows, 7].astype(np.float64)[inside]
    unbiased = kept.weight[inside] / kept.bias[inside]
    squares_u = np.sum(w * np.maximum(unbiased, floor))
    return {
        "rows": int(inside.sum()),
        "rate_per_pot": float(w.sum() / run.pot),
        "ess": float(w.sum() ** 2 / max(np.sum(w**2), 1e-300)),
        "unbiased_ess_per_pot": float(w.sum() ** 2 / run.pot / max(squares_u, 1e-300)),
    }


def _batch_ess(run: Run, cut: tuple[float, float]) -> float:
    kept = run.block.kept
    inside = (np.linalg.norm(kept.momentum, axis=1) > cut[0]) & (np.hypot(*kept.momentum[:, :2].T) > cut[1])
    sums = np.bincount(_batches(run), weights=run.block.muons[:, 7] * inside, minlength=len(run.block.batch_rows))
    runs = np.array(run.block.batch_runs)
    variance = sum(np.sum(runs == r) * sums[runs == r].var(ddof=1) for r in set(runs) if np.sum(runs == r) > 1)
    return float(sums.sum() ** 2 / variance) if variance > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pot-unbiased", type=int, default=20_000)
    parser.add_argument("--pot-biased", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--tail", type=json.loads, default={}, help="tail settings to change, as JSON")
    args = parser.parse_args()
    driver._BATCH = BATCH  # independent batches of 1,000 protons for the errors
    plain = SourceSettings()
    tail = replace(plain, tail_biasing=True, **args.tail)
    init = _init_cost(plain)
    unbiased = _run(plain, args.pot_unbiased, args.seed, init)
    biased = _run(tail, args.pot_biased, args.seed + 1, init)
    cpu_u, cpu_b = unbiased.cpu / unbiased.pot, biased.cpu / biased.pot
    print(
        f"init {init:.1f} CPU-s per task; unbiased {cpu_u * 1e3:.3f} ms/POT ({unbiased.pot} POT), "
        f"biased {cpu_b * 1e3:.3f} ms/POT ({biased.pot} POT)"
    )
    print(
        f"muons_per_pot unbiased {unbiased.block.muons[:, 7].sum() / unbiased.pot:.4g}, "
        f"biased {biased.block.muons[:, 7].sum() / biased.pot:.4g}"
    )
    rng = np.random.default_rng(0)
    batch_of = _batches(biased)
    n_batches = len(biased.block.batch_rows)
    everything = np.arange(len(batch_of))
    results = {}
    for name, cut in REGIONS.items():
        f = _figures(biased, cut, plain.weight_floor, everything)
        direct = _figures(unbiased, cut, plain.weight_floor, np.arange(len(unbiased.block.muons)))
        gain = (f["ess"] / biased.cpu) / (f["unbiased_ess_per_pot"] / cpu_u)
        draws = []
        by_batch = [np.flatnonzero(batch_of == b) for b in range(n_batches)]
        for _ in range(args.bootstrap):
            rows = np.concatenate([by_batch[b] for b in rng.integers(0, n_batches, n_batches)])
            g = _figures(biased, cut, plain.weight_floor, rows)
            if g["rows"]:
                draws.append((g["ess"] / biased.cpu) / (g["unbiased_ess_per_pot"] / cpu_u))
        low, high = np.percentile(draws, [16, 84]) if draws else (np.nan, np.nan)
        results[name] = {
            **{f"biased_{k}": v for k, v in f.items()},
            "biased_ess_per_cpu_s": f["ess"] / biased.cpu,
            "biased_batch_ess": _batch_ess(biased, cut),
            "unbiased_ess_per_cpu_s": f["unbiased_ess_per_pot"] / cpu_u,
            "unbiased_direct_rows": direct["rows"],
            "gain": gain,
            "gain_68": [float(low), float(high)],
        }
        print(name, json.dumps(results[name], indent=1))


if __name__ == "__main__":
    main()
