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

from training.fom import features

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


def tail_table(generated: np.ndarray, reference: np.ndarray, z_front: float) -> list[dict[str, Any]]:
    """One row per threshold: its definition, both rates with errors, their ratio with its error."""
    gen, ref = features(generated, z_front), features(reference, z_front)
    w_gen, w_ref = generated[:, -1].astype(np.float64), reference[:, -1].astype(np.float64)
    cuts: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name in VARIABLES:
        for q in QUANTILES:
            threshold = float(np.quantile(ref[name], q, weights=w_ref, method="inverted_cdf"))
            label = f"{name} > {threshold:.4g} {UNITS[name]} (reference {100 * q:g}%)"
            cuts.append((label, gen[name] > threshold, ref[name] > threshold))
    cuts.append(("pt > 3 GeV/c", gen["pt"] > 3, ref["pt"] > 3))
    cuts.append(
        ("p > 100 GeV/c and pt > 3 GeV/c", (gen["p"] > 100) & (gen["pt"] > 3), (ref["p"] > 100) & (ref["pt"] > 3))
    )
    rows = []
    for label, gen_above, ref_above in cuts:
        g, r = _rate(gen_above, w_gen), _rate(ref_above, w_ref)
        ratio = g["rate"] / r["rate"] if r["rate"] > 0 else None
        error = None
        if ratio is not None and g["rate"] > 0:
            error = ratio * float(np.hypot(g["error"] / g["rate"], r["error"] / r["rate"]))
        rows.append(
            {
                "cut": label,
                "generated": g,
                "reference": r,
                "ratio": ratio,
                "ratio_error": error,
                "enough": r["n"] >= MIN_REFERENCE,
            }
        )
    return rows
