"""Errors of tail rates that count showers, not muons.

The muons of one proton's shower are not independent: they share the depth of the hadrons that made
them, and each pi/K decay is split in two half-weight muons (FairShip's convention). So the Poisson error
``sqrt(sum w^2) / sum w`` understates how a rate scatters between runs: for z - z_front above its 99.99%
quantile, five independent runs scattered twice as much as it says (training/README.md).

The reference source records which rows come from which batch of protons (or of forced events), in file
order (metadata ``independent_blocks``, :mod:`training.reference.driver`). Batches share no proton, so
they are independent draws, and a rate ``R = A / W`` (weight above the cut over all weight) gets the
linearised variance of a ratio estimator over them (Cochran, *Sampling Techniques*, 1977, section 6.4),
stratified by run (the cascade, and each forced run, whose batches differ in kind):

    Var(R) = sum_s n_s / (n_s - 1) * sum_{i in s} (d_i - mean_s d)^2 / W^2,   d_i = a_i - R w_i.

It needs no model of what happens inside a shower. A run with a single batch in the whole set has no
spread to measure: its ``d_i^2`` stands for its variance (an overestimate).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.contract.muons import SampleError
from service.samples import sets
from training.evaluation.fom import features
from training.evaluation.tails import Condition, passes, ratio_error
from training.reference.settings import BLOCKS


@dataclass(frozen=True)
class BlockSums:
    """Per independent block: its run, its summed weight, and its summed weight above each cut."""

    run: np.ndarray  # (blocks,) str
    weight: np.ndarray  # (blocks,)
    above: np.ndarray  # (cuts, blocks)

    def rate_errors(self) -> np.ndarray:
        """The stratified ratio-estimator error of each cut's rate (formula in the module docstring)."""
        total = self.weight.sum()
        d = self.above - (self.above.sum(axis=1) / total)[:, None] * self.weight[None, :]
        variance = np.zeros(len(d))
        for run in np.unique(self.run):
            mine = d[:, self.run == run]
            n = mine.shape[1]
            if n > 1:
                variance += n / (n - 1) * ((mine - mine.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            else:
                variance += (mine**2).sum(axis=1)
        errors: np.ndarray = np.sqrt(variance) / total
        return errors


def blocks_of(metadata: dict[str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows per block and each block's run from a file's metadata; None when the file does not record them."""
    if BLOCKS not in metadata:
        return None
    try:
        recorded = json.loads(metadata[BLOCKS])
        counts, runs = np.asarray(recorded["rows"], dtype=np.int64), np.asarray(recorded["run"], dtype=str)
    except (ValueError, KeyError, TypeError) as error:
        raise SampleError(f"metadata {BLOCKS} is not rows and runs: {error}") from None
    if counts.ndim != 1 or counts.shape != runs.shape or np.any(counts < 0):
        raise SampleError(f"metadata {BLOCKS} is not one row count and one run per block")
    return counts, runs


def block_sums(files: Sequence[Path], cuts: Sequence[Sequence[Condition]], z_front: float) -> BlockSums | None:
    """One streaming pass over ``files``: each block's weight in all and above each cut (a cut holds
    where every one of its conditions does). None unless every file records its blocks."""
    runs, weights, above = [], [], []
    for member in map(sets.member, files):
        found = blocks_of(member.metadata)
        if found is None:
            return None
        counts, run = found
        block = np.repeat(np.arange(len(counts)), counts)
        weight, sums, start = np.zeros(len(counts)), np.zeros((len(cuts), len(counts))), 0
        for chunk in sets.chunks(member.path):
            muons = chunk.muons
            if chunk.skipped or start + len(muons) > len(block):
                raise SampleError(f"{member.path}: its rows do not line up with its {BLOCKS}")
            mine, start = block[start : start + len(muons)], start + len(muons)
            columns, w = features(muons, z_front), muons[:, -1].astype(np.float64)
            weight += np.bincount(mine, weights=w, minlength=len(counts))
            for k, cut in enumerate(cuts):
                passed = passes(columns, list(cut))
                sums[k] += np.bincount(mine[passed], weights=w[passed], minlength=len(counts))
        if start != len(block):
            raise SampleError(f"{member.path}: {start:,} rows, but its {BLOCKS} add up to {len(block):,}")
        runs.append(run)
        weights.append(weight)
        above.append(sums)
    return BlockSums(np.concatenate(runs), np.concatenate(weights), np.concatenate(above, axis=1))


def with_shower_errors(
    rows: list[dict[str, Any]], files: Sequence[Path], z_front: float
) -> tuple[list[dict[str, Any]], str | None]:
    """The tail table with each reference rate's shower-aware error and the ratio's error from it, and
    None; or the table as it was and why it could not be done."""
    sums = block_sums(files, [row["conditions"] for row in rows], z_front)
    if sums is None:
        return rows, f"the reference files do not all record their {BLOCKS}"
    updated = []
    for row, error in zip(rows, sums.rate_errors(), strict=True):
        reference = {**row["reference"], "shower_error": float(error)}
        relative = error / reference["rate"] if reference["rate"] > 0 else 0.0
        shower = ratio_error(row["ratio"], row["generated"], relative)
        updated.append({**row, "reference": reference, "ratio_shower_error": shower})
    return updated, None
