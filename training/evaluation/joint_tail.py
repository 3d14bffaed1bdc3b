"""The region the muon shield exists for, |p| > 100 GeV/c and pT > 3 GeV/c (issue 27 goal 2).

An unbiased reference of a few million POT holds a few dozen muons there, so the tail table cannot judge
it; a tail-biased reference (``muongan sample --bias tail``) holds thousands of effective muons with
weights that vary by orders of magnitude. So the region is judged on its own, by weighted sums streamed
over every file of that reference, not on the evaluation's subsample:

- the reference's rate ``A / W`` (weight in the region over all weight), its effective number of muons
  there ``(sum w)^2 / sum w^2``, and its error over independent blocks of protons
  (:mod:`training.evaluation.showers`: splitting and showers correlate muons, so a weighted Poisson error
  would understate it), Poisson where the files do not record their blocks;
- the model's plain rate from ``n`` muons streamed in blocks (memory stays flat at any ``n``), and the same
  rate from a boosted request (pT and pz scaled by 2), whose importance weights must make it agree with
  plain while it puts many more effective muons there per muon generated.

The region is judged only where the reference has :data:`MIN_EFFECTIVE` effective muons in it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.contract.muons import SampleError
from service.engine.generation import Engine, LatentSource, Request
from service.samples import sets
from training.evaluation.boosted import group_scales
from training.evaluation.fom import features
from training.evaluation.showers import block_sums
from training.evaluation.tails import Condition, passes

REGION: list[Condition] = [("p", 100.0), ("pt", 3.0)]
LABEL = "|p| > 100 GeV/c and pT > 3 GeV/c"
MIN_EFFECTIVE = 1000
BOOST = {"pt": 2.0, "pz": 2.0}
BLOCK = 1_000_000  # generated muons per engine call: bounds memory, not the figures (slices are bit for bit)


@dataclass
class RegionSums:
    """Running weighted sums over muons, in the region and in all."""

    rows: int = 0
    weight: float = 0.0
    inside: float = 0.0
    inside_squares: float = 0.0
    count: int = 0

    def add(self, muons: np.ndarray) -> None:
        w = muons[:, -1].astype(np.float64)
        mask = passes(features(muons), REGION)
        self.rows += len(muons)
        self.weight += float(w.sum())
        self.inside += float(w[mask].sum())
        self.inside_squares += float(np.sum(w[mask] ** 2))
        self.count += int(mask.sum())

    def figures(self) -> dict[str, Any]:
        """Rate with its weighted Poisson error, muons and effective muons in the region, all muons."""
        effective = self.inside**2 / self.inside_squares if self.inside_squares > 0 else 0.0
        return {
            "rate": self.inside / self.weight,
            "error": float(np.sqrt(self.inside_squares)) / self.weight,
            "n": self.count,
            "effective": effective,
            "effective_per_muon": effective / self.rows,
            "muons": self.rows,
        }


def reference_figures(files: Sequence[Path], z_front: float) -> dict[str, Any]:
    """The reference's region figures over all of ``files``, with the error taken over its blocks where
    every file records them and they fit its rows (weighted Poisson otherwise, saying why)."""
    sums = RegionSums()
    for path in files:
        for chunk in sets.chunks(path):
            sums.add(chunk.muons)
    figures = sums.figures()
    try:
        blocks = block_sums(files, [REGION], z_front)
    except SampleError as error:  # e.g. a file cut from a sample, its metadata copied: the muons were read above
        return {**figures, "error_from": f"weighted Poisson: {error}"}
    if blocks is None:
        return {**figures, "error_from": "weighted Poisson: the files do not record their independent blocks"}
    return {**figures, "error": float(blocks.rate_errors()[0]), "error_from": "independent blocks of protons"}


def generated_figures(engine: Engine, source: LatentSource, seed: int, n: int) -> dict[str, Any]:
    """The region's figures of ``n`` muons of ``source`` from ``seed``, made a block at a time."""
    sums = RegionSums()
    for start in range(0, n, BLOCK):
        sums.add(engine.generate(Request(seed, start, min(BLOCK, n - start), source))[0])
    return sums.figures()


def joint_tail(
    engine: Engine, files: Sequence[Path], z_front: float, n: int, n_boosted: int, seed: int
) -> dict[str, Any]:
    """Reference, plain and boosted figures in the region, and how they compare."""
    clock = time.perf_counter()
    reference = reference_figures(files, z_front)
    plain = generated_figures(engine, engine.plain_source(), seed, n)
    boosted = generated_figures(engine, engine.boosted_source(group_scales(**BOOST)), seed, n_boosted)
    ratio = plain["rate"] / reference["rate"] if reference["rate"] > 0 else None
    ratio_error = None
    if ratio is not None and plain["n"] > 0:
        ratio_error = ratio * float(np.hypot(plain["error"] / plain["rate"], reference["error"] / reference["rate"]))
    both = float(np.hypot(plain["error"], boosted["error"]))
    return {
        "region": LABEL,
        "conditions": REGION,
        "reference": {**reference, "files": [str(path) for path in files]},
        "judged": reference["effective"] >= MIN_EFFECTIVE,
        "min_effective": MIN_EFFECTIVE,
        "plain": plain,
        "boosted": {**boosted, "scales": BOOST},
        "ratio": ratio,
        "ratio_error": ratio_error,
        "boosted_gain": boosted["effective_per_muon"] / plain["effective_per_muon"] if plain["n"] else None,
        "boosted_pull": (boosted["rate"] - plain["rate"]) / both if both > 0 else None,
        "seed": seed,
        "seconds": round(time.perf_counter() - clock, 2),
    }
