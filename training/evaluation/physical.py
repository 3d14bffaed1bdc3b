"""Is a muon physical? The checks of issue 13 goal 3, counted over a sample (numpy only).

A muon is physical when it goes forward (pz > 0), its transverse momentum is below its momentum
(pT < |p|), its momentum lies between the momentum cut at its depth (``p_edge`` through ``p_edge_z``,
or one ``p_low`` for models trained before the cut followed z) and the beam momentum, and its start point lies
inside the region the model states (``feature_scaling`` in ``model.json``: z between the target front
and the sample's last muon plus a margin, r up to the sample's largest plus a margin). Edges are
compared with a float32 tolerance, since the muons are float32 and the generator may sit exactly on
an edge. A model that states no r or z edge (trained before these bounds existed) gets ``None`` for
that check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.plots import observables

# Relative tolerance on the stated edges: a few float32 ulps.
EDGE_TOLERANCE = 1e-6


def violations(muons: np.ndarray, region: dict[str, Any]) -> dict[str, int | None]:
    """Number of muons failing each check; ``region`` is a model's ``feature_scaling``."""
    v = observables(muons)
    r = np.hypot(v["x"], v["y"])
    finite = np.all(np.isfinite(muons), axis=1)

    def outside(values: np.ndarray, low: np.ndarray | float | None, high: str) -> int | None:
        if high not in region:
            return None
        inside = values <= region[high] + EDGE_TOLERANCE * abs(region[high])
        if low is not None:
            inside &= values >= low - EDGE_TOLERANCE * np.abs(low)
        return int((~inside).sum())

    return {
        "not_finite": int((~finite).sum()),
        "pz_not_positive": int((~(v["pz"] > 0)).sum()),
        "pt_not_below_p": int((~(v["pt"] < v["p"])).sum()),
        "p_outside_cut_and_beam": outside(v["p"], _momentum_cut(v["z"], region), "p_high")
        if "p_low" in region
        else None,
        "z_outside_region": outside(v["z"], region["z_low"], "z_high") if "z_low" in region else None,
        "r_outside_region": outside(r, None, "r_max"),
    }


def _momentum_cut(z: np.ndarray, region: dict[str, Any]) -> np.ndarray | float:
    """The lowest |p| the model states at each muon's depth (one number for models before the edge followed z)."""
    if "p_edge" not in region:
        return float(region["p_low"])
    cut: np.ndarray = np.interp(z, region["p_edge_z"], region["p_edge"])
    return cut


def all_physical(counts: dict[str, int | None]) -> bool:
    """Whether no check failed (checks a model cannot state count as failed)."""
    return all(count == 0 for count in counts.values())
