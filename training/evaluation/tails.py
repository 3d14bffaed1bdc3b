"""The tail table of issue 13 goal 2: generated / reference rates where SHiP looks, with Poisson errors.

Thresholds are the reference's weighted 99.9% and 99.99% quantiles of pT, |p|, r and z - z_front, plus
the fixed cuts pT > 3 GeV/c and (|p| > 100 GeV/c and pT > 3 GeV/c) that matter for the muon shield.
A rate is a weighted fraction ``sum w[above] / sum w``; its Poisson error ``sqrt(sum w[above]^2) / sum w``.
A row counts towards the goal only where the reference has at least :data:`MIN_REFERENCE` muons above
the threshold (``enough``); the others are still listed, so nothing is hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.evaluation.fom import features

QUANTILES = (0.999, 0.9999)
VARIABLES = ("pt", "p", "r", "dz")
MIN_REFERENCE = 300
UNITS = {"pt": "GeV/c", "p": "GeV/c", "r": "cm", "dz": "cm"}


def _rate(above: np.ndarray, weights: np.ndarray) -> dict[str, float | int]:
    total = float(weights.sum())
    return {
        "n": int(above.sum()),
        "rate": float(weights[above].sum() / total),
        "error": float(np.sqrt(np.sum(weights[above] ** 2)) / total),
    }


Condition = tuple[str, float]  # a column of training.evaluation.fom.features, and the value it must exceed


def passes(columns: dict[str, np.ndarray], conditions: list[Condition]) -> np.ndarray:
    """Where every condition of a cut holds."""
    result: np.ndarray = np.logical_and.reduce([columns[name] > value for name, value in conditions])
    return result


def tail_cuts(reference: np.ndarray, z_front: float) -> list[tuple[str, list[Condition]]]:
    """Each cut's label and conditions: the reference's weighted quantiles, then the fixed cuts."""
    columns, weights = features(reference, z_front), reference[:, -1].astype(np.float64)
    cuts = []
    for name in VARIABLES:
        for q in QUANTILES:
            threshold = float(np.quantile(columns[name], q, weights=weights, method="inverted_cdf"))
            cuts.append((f"{name} > {threshold:.4g} {UNITS[name]} (reference {100 * q:g}%)", [(name, threshold)]))
    cuts.append(("pt > 3 GeV/c", [("pt", 3.0)]))
    cuts.append(("p > 100 GeV/c and pt > 3 GeV/c", [("p", 100.0), ("pt", 3.0)]))
    return cuts


def tail_table(generated: np.ndarray, reference: np.ndarray, z_front: float) -> list[dict[str, Any]]:
    """One row per cut: its definition, both rates with errors, their ratio with its error."""
    gen, ref = features(generated, z_front), features(reference, z_front)
    w_gen, w_ref = generated[:, -1].astype(np.float64), reference[:, -1].astype(np.float64)
    rows = []
    for label, conditions in tail_cuts(reference, z_front):
        g, r = _rate(passes(gen, conditions), w_gen), _rate(passes(ref, conditions), w_ref)
        ratio = g["rate"] / r["rate"] if r["rate"] > 0 else None
        rows.append(
            {
                "cut": label,
                "conditions": conditions,
                "generated": g,
                "reference": r,
                "ratio": ratio,
                "ratio_error": ratio_error(ratio, g, r["error"] / r["rate"]) if r["rate"] > 0 else None,
                "enough": r["n"] >= MIN_REFERENCE,
            }
        )
    return rows


def ratio_error(ratio: float | None, generated: dict[str, Any], reference_relative: float) -> float | None:
    """The ratio's error from the generated rate's and the reference rate's relative errors."""
    if ratio is None or generated["rate"] <= 0:
        return None
    return ratio * float(np.hypot(generated["error"] / generated["rate"], reference_relative))
