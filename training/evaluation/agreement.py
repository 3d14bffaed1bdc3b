"""Do independent runs of a source agree in their tails, within errors that count showers?

Pooling runs into one reference (``evaluate --reference A B C``) and reading its errors as the tails'
uncertainty are both right only if the runs scatter as their errors say. Each run's rate above the
pooled set's tail cuts (:func:`training.evaluation.tails.tail_cuts`: the weighted 99.9% and 99.99% quantiles and
the fixed pT cuts) gets its stratified error over its own independent blocks of protons
(:mod:`training.evaluation.showers`), and the runs are compared with their inverse-variance weighted mean:

    chi^2 = sum_i (R_i - mean)^2 / e_i^2,   runs - 1 degrees of freedom per cut.

A chi^2 well above its degrees of freedom says the runs differ by more than their batches of protons
do: something the errors do not count (a handful of heavy forced events, say), or a source that is not
the same from run to run. The total over cuts is a summary, not a test: a 99.99% tail lies inside the
99.9% one, so the cuts of one variable are correlated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2 as chi2_distribution

from service.contract.muons import SampleError, column
from service.samples import sets
from training.evaluation.fom import features
from training.evaluation.showers import BLOCKS, block_sums, blocks_of
from training.evaluation.tails import MIN_REFERENCE, Condition, passes, tail_cuts


def pooled(runs: Sequence[Sequence[Path]]) -> np.ndarray:
    """Every muon of every run, ``(n, 8)``: the tail cuts are the pooled set's quantiles, exact."""
    parts = [chunk.muons for files in runs for path in files for chunk in sets.chunks(path)]
    if not parts or sum(map(len, parts)) == 0:
        raise SampleError("the runs hold no muons")
    return np.concatenate(parts)


def agreement(runs: Sequence[Sequence[Path]]) -> dict[str, Any]:
    """Per cut of the pooled set: each run's rate and error, their weighted mean, each run over the
    mean, chi^2 and its p-value; then the total over the cuts with at least ``MIN_REFERENCE`` pooled
    muons above them (the evaluation's rule for a row that counts)."""
    if len(runs) < 2:
        raise SampleError(f"agreement needs at least 2 runs, got {len(runs)}")
    for path in (path for files in runs for path in files):  # before reading any muon: a production is big
        if blocks_of(sets.member(path).metadata) is None:
            raise SampleError(f"{path}: does not record its {BLOCKS} (only muongan sample writes them)")
    muons = pooled(runs)
    z_front = float(muons[:, column("z")].min())
    cuts = tail_cuts(muons, z_front)
    conditions: list[list[Condition]] = [c for _, c in cuts]
    columns = features(muons, z_front)
    pooled_n = [int(passes(columns, c).sum()) for c in conditions]
    del muons, columns
    rates, errors = [], []
    for files in runs:
        sums = block_sums(files, conditions, z_front)
        assert sums is not None  # every file's blocks were checked above
        rates.append(sums.above.sum(axis=1) / sums.weight.sum())
        errors.append(sums.rate_errors())
    table = [
        _cut(label, cut, n, rate, error)
        for (label, cut), n, rate, error in zip(cuts, pooled_n, np.transpose(rates), np.transpose(errors), strict=True)
    ]
    counted = [row for row in table if row["counts"]]
    chi2, dof = sum(row["chi2"] for row in counted), sum(row["dof"] for row in counted)
    return {
        "z_front": z_front,
        "cuts": table,
        "total": {
            "cuts": len(counted),
            "chi2": chi2,
            "dof": dof,
            "p_value": float(chi2_distribution.sf(chi2, dof)) if dof else None,
            "error_scale": float(np.sqrt(chi2 / dof)) if dof else None,
        },
    }


def _cut(label: str, conditions: list[Condition], pooled_n: int, rate: np.ndarray, error: np.ndarray) -> dict[str, Any]:
    """One cut's comparison; a cut where some run has no muon above it has no chi^2."""
    row: dict[str, Any] = {"cut": label, "conditions": conditions, "pooled_n": pooled_n}
    row |= {"rates": rate.tolist(), "errors": error.tolist()}
    if np.any(error <= 0):
        missing = dict.fromkeys(("mean", "ratios", "ratio_errors", "chi2", "p_value"))
        return {**row, **missing, "dof": 0, "counts": False}
    inverse = 1.0 / error**2
    mean = float(np.sum(rate * inverse) / inverse.sum())
    chi2 = float(np.sum((rate - mean) ** 2 * inverse))
    dof = len(rate) - 1
    return {
        **row,
        "mean": mean,
        "ratios": (rate / mean).tolist(),
        "ratio_errors": (error / mean).tolist(),
        "chi2": chi2,
        "dof": dof,
        "p_value": float(chi2_distribution.sf(chi2, dof)),
        "counts": pooled_n >= MIN_REFERENCE,
    }
