"""Boosted and extreme-aux muons, made by the service's own engine: are they physical, and worth it?

- Physical checks (issue 13 goal 3) on plain, boosted (each group at :data:`SCALES`, all groups at
  the service's largest scale) and custom aux of :data:`EXTREME_AUX` in every group: the counts of
  :func:`training.evaluation.physical.violations`, plus the fractions beyond the reference's largest z and r
  (informative: the model's stated region is the training sample's plus a margin).
- Boosted effective sample size (goal 4): per group, ESS = (sum w)^2 / sum w^2 of the muons above the
  plain sample's 99.9% quantile of the group's variable, per muon generated, at scale :data:`ESS_SCALE`
  in that group, against plain generation's muons above it per muon generated (0.001 by construction).
  The weighted rate above the quantile is reported too: importance weights make it the plain rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.contract.manifest import AUX_GROUPS
from service.engine.generation import Engine, Request
from training.evaluation.fom import features
from training.evaluation.physical import violations

SCALES = (2.0, 5.0, 10.0)
LARGEST_SCALE = 10.0  # the service's largest boost per group
ESS_SCALE = 2.0
EXTREME_AUX = (1e-3, 10.0)
GROUP_VARIABLE = {"xy": "r", "z": "z", "pt": "pt", "pz": "pz"}
QUANTILE = 0.999


def group_scales(**boost: float) -> list[float]:
    """Each aux group's scale, in the service's order: the named ones as given, the rest 1."""
    return [boost.get(group, 1.0) for group in AUX_GROUPS]


def _check(muons: np.ndarray, region: dict[str, Any], reference: dict[str, float]) -> dict[str, Any]:
    v = features(muons)
    return {
        "n": len(muons),
        "violations": violations(muons, region),
        "fraction_beyond_reference": {
            "z": float(np.mean(v["z"] > reference["z"])),
            "r": float(np.mean(v["r"] > reference["r"])),
        },
    }


def _ess_gain(plain: np.ndarray, boosted: np.ndarray, variable: str) -> dict[str, Any]:
    values = features(plain)[variable]
    threshold = float(np.quantile(values, QUANTILE))
    plain_per_muon = float(np.mean(values > threshold))
    above = features(boosted)[variable] > threshold
    w = boosted[:, -1].astype(np.float64)
    ess = float(w[above].sum() ** 2 / np.sum(w[above] ** 2)) if above.any() else 0.0
    return {
        "variable": variable,
        "threshold": threshold,
        "plain_per_muon": plain_per_muon,
        "boosted_ess_per_muon": ess / len(boosted),
        "gain": ess / len(boosted) / plain_per_muon,
        "boosted_weighted_rate": float(w[above].sum() / w.sum()),
        "boosted_weighted_rate_error": float(np.sqrt(np.sum(w[above] ** 2)) / w.sum()),
    }


def boosted_figures(engine: Engine, plain: np.ndarray, n: int, seed: int, reference: np.ndarray) -> dict[str, Any]:
    """Physical checks and ESS gains; ``plain`` is the evaluation's plain sample, ``n`` muons per boosted run."""
    region = engine.manifest.hyperparameters.get("feature_scaling", {})
    ref = features(reference)
    reference_edges = {"z": float(ref["z"].max()), "r": float(ref["r"].max())}
    checks = {"plain": _check(plain, region, reference_edges)}
    ess = {}
    for group in AUX_GROUPS:
        for scale in SCALES:
            source = engine.boosted_source(group_scales(**{group: scale}))
            muons, _ = engine.generate(Request(seed, 0, n, source))
            checks[f"boosted {group} x{scale:g}"] = _check(muons, region, reference_edges)
            if scale == ESS_SCALE:
                ess[group] = _ess_gain(plain, muons, GROUP_VARIABLE[group])
    every = engine.boosted_source([LARGEST_SCALE] * len(AUX_GROUPS))
    checks[f"boosted all x{LARGEST_SCALE:g}"] = _check(
        engine.generate(Request(seed, 0, n, every))[0], region, reference_edges
    )
    for value in EXTREME_AUX:
        custom = engine.custom_source(np.full((n, len(AUX_GROUPS)), value, dtype=np.float32))
        checks[f"custom aux {value:g} in every group"] = _check(
            engine.generate(Request(seed, 0, n, custom))[0], region, reference_edges
        )
    return {"checks": checks, "ess": {"scale": ESS_SCALE, "quantile": QUANTILE, "groups": ess}}
