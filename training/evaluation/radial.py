"""The start point as FairShip users see it: the radial profile of a spotless model, and its muons painted.

SHiP's convention keeps muons at their production vertex: a share exactly on the beam axis, a core spread over
decades below a millimetre, a halo out to the target's edge. Two questions follow, and this module answers
both:

- does the model render that structure? The weighted share of muons at r = 0 and below 1 um, 10 um,
  0.1 mm, 1 mm, 1 cm and 5 cm, generated against reference, judged within +-10% where the reference's share
  is above 0.1%, and the cumulative share on a log-r grid to draw;
- does it matter to Geant4? FairShip paints its beam spot on every muon it reads
  (:func:`training.reference.geometry.beam_offsets`, ``--SmearBeam 0.8 --PaintBeam 5``), which erases
  structure below a millimetre; :func:`painted` applies it, so the classifier can be run on what Geant4 sees.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from service.contract.muons import column
from training.reference.geometry import FAIRSHIP_PAINT_CM, FAIRSHIP_SMEAR_CM, beam_offsets

# The judged cuts: exactly on the axis (edge 0), then below each edge.
CUTS_CM = {
    "r = 0": 0.0,
    "r < 1 um": 1e-4,
    "r < 10 um": 1e-3,
    "r < 0.1 mm": 1e-2,
    "r < 1 mm": 0.1,
    "r < 1 cm": 1.0,
    "r < 5 cm": 5.0,
}
PROFILE_BAND = 0.10  # goal: within +-10%
MIN_SHARE = 1e-3  # judged where the reference's share is above 0.1%
CURVE_CM = np.logspace(-10, 2, 97)


def painted(muons: np.ndarray, seed: int) -> np.ndarray:
    """A copy of canonical muons with FairShip's default beam spot added to x and y (seeded)."""
    x, y = beam_offsets(len(muons), FAIRSHIP_SMEAR_CM, FAIRSHIP_PAINT_CM, np.random.default_rng(seed))
    out = muons.copy()
    out[:, column("x")] = (out[:, column("x")] + x).astype(out.dtype)
    out[:, column("y")] = (out[:, column("y")] + y).astype(out.dtype)
    return out


class _Radii:
    """One sample's start radii sorted once, with cumulative weights and squared weights: every share at or
    below an edge, and its error, is then a lookup rather than a pass over the muons."""

    def __init__(self, muons: np.ndarray) -> None:
        radius = np.hypot(muons[:, column("x")].astype(np.float64), muons[:, column("y")].astype(np.float64))
        order = np.argsort(radius, kind="stable")
        weights = muons[order, -1].astype(np.float64)
        self.radius = radius[order]
        self.weight = np.concatenate([[0.0], np.cumsum(weights)])
        self.weight2 = np.concatenate([[0.0], np.cumsum(weights**2)])

    def share(self, edge: float, side: Literal["left", "right"]) -> tuple[float, float]:
        """Weighted share below ``edge`` (``side="left"``: r < edge) or at or below it (``"right"``), and its
        weighted-binomial error ``sqrt(sum w^2 (1_in - p)^2) / sum w``."""
        k = int(np.searchsorted(self.radius, edge, side=side))
        total, inside, inside2 = self.weight[-1], self.weight[k], self.weight2[k]
        p = inside / total
        variance = (1 - p) ** 2 * inside2 + p**2 * (self.weight2[-1] - inside2)
        return float(p), float(np.sqrt(variance) / total)


def radial_profile(generated: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Shares at r = 0 and below each edge, both samples, with ratios, errors and the judgement; and the curve."""
    radii = {"generated": _Radii(generated), "reference": _Radii(reference)}
    rows = []
    for label, edge in CUTS_CM.items():
        # r = 0 is "at or below 0"; every other cut is "below the edge".
        shares = {side: sample.share(edge, "right" if edge == 0 else "left") for side, sample in radii.items()}
        (gen, gen_error), (ref, ref_error) = shares["generated"], shares["reference"]
        ratio = gen / ref if ref > 0 else None
        error = ratio * float(np.hypot(gen_error / gen, ref_error / ref)) if ratio and gen > 0 else None
        judged = ref > MIN_SHARE
        rows.append(
            {
                "cut": label,
                "generated": gen,
                "generated_error": gen_error,
                "reference": ref,
                "reference_error": ref_error,
                "ratio": ratio,
                "ratio_error": error,
                "judged": judged,
                "within": bool(judged and ratio is not None and abs(ratio - 1) <= PROFILE_BAND),
            }
        )
    curve = {side: [sample.share(edge, "right")[0] for edge in CURVE_CM] for side, sample in radii.items()}
    return {"rows": rows, "curve_cm": CURVE_CM.tolist(), "curve": curve, "band": PROFILE_BAND}


def radial_figure(profile: dict[str, Any]) -> Figure:
    """Cumulative share of muons within r (log r; r = 0 drawn at the left edge), and the ratio at the judged edges."""
    figure = Figure(figsize=(9, 7), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    r = np.asarray(profile["curve_cm"])
    for side, style in (("reference", "k-"), ("generated", "C0--")):
        top.plot(r, profile["curve"][side], style, label=side, drawstyle="steps-post")
    rows = profile["rows"]
    top.axhline(
        rows[0]["reference"], color="k", lw=0.6, ls=":", label=f"reference at r = 0: {rows[0]['reference']:.2%}"
    )
    top.axhline(
        rows[0]["generated"], color="C0", lw=0.6, ls=":", label=f"generated at r = 0: {rows[0]['generated']:.2%}"
    )
    top.set_xscale("log")
    top.set_ylabel("weighted share of muons with start radius <= r")
    top.legend(loc="upper left", fontsize="small")
    for edge, row in zip(CUTS_CM.values(), rows, strict=True):
        if row["ratio"] is None:
            continue
        colour = "C0" if row["judged"] else "0.6"
        edge = edge or r[0]
        bottom.errorbar(edge, row["ratio"], yerr=row["ratio_error"] or 0.0, fmt="o", color=colour, capsize=3)
        bottom.annotate(row["cut"], (edge, row["ratio"]), textcoords="offset points", xytext=(4, 6), fontsize="small")
    band = profile["band"]
    bottom.axhspan(1 - band, 1 + band, color="C2", alpha=0.15, label=f"goal: within +-{band:.0%}")
    bottom.axhline(1.0, color="k", lw=0.8)
    bottom.set_ylabel("generated / reference share")
    bottom.set_xlabel("start radius r [cm] (r = 0 at the left edge; grey: reference share below 0.1%, not judged)")
    bottom.legend(loc="lower right", fontsize="small")
    return figure
