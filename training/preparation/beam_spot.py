"""Which beam-spot convention a training sample follows, so the model can tell FairShip users which flags to use.

SHiP's production files keep every muon at its production vertex and FairShip's ``MuonBackGenerator`` paints the
beam spot when it reads them (``run_simScript.py --MuonBack`` defaults ``--SmearBeam 0.8 --PaintBeam 5``). A
sample made with the spot already painted (``muongan sample --beam-spot``) needs ``--SmearBeam 0 --PaintBeam 0``,
or the spot is painted twice. A model inherits its sample's convention, and ``model.json`` ``beam_spot`` states it:
every output of the service repeats it.

The sample's own metadata decides when every file has it (``muongan sample`` writes ``beam_spot``); a FairShip
production has none, so the start radii decide: a spotless production has a large share of muons within a
millimetre of the axis (SHiP's files: 56% exactly on it), FairShip's painted spot (a 0.8 cm Gaussian on a 5 cm
ring) essentially none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from muongan.errors import UserError

SPOTLESS, PAINTED = "spotless", "painted"
FAIRSHIP_FLAGS = {SPOTLESS: "--SmearBeam 0.8 --PaintBeam 5", PAINTED: "--SmearBeam 0 --PaintBeam 0"}
DESCRIPTIONS = {
    SPOTLESS: "muons start at their production vertex with no beam spot, as in SHiP's production files: run "
    "FairShip with its defaults (--SmearBeam 0.8 --PaintBeam 5), which paint the spot",
    PAINTED: "a beam spot is already painted on every muon: run FairShip with --SmearBeam 0 --PaintBeam 0, or the "
    "spot is painted twice",
}
CORE_RADIUS_CM = 0.1  # 1 mm: far below the painted spot's 0.8 cm Gaussian on its 5 cm ring
SPOTLESS_CORE_SHARE = 0.01  # a spotless sample has tens of percent there, a painted one about 1e-9


def convention_of_metadata(text: str) -> str:
    """``muongan sample``'s ``beam_spot`` metadata ("none: ..." or "Gaussian sigma ...") -> the convention."""
    return SPOTLESS if text.strip().lower().startswith("none") else PAINTED


def beam_spot_record(files: list[dict[str, Any]], muons: np.ndarray, weights: np.ndarray) -> dict[str, str]:
    """``model.json`` ``beam_spot`` for a sample set: its files' metadata, else its muons' start radii.

    ``muons`` are physical ``(n, 7)`` rows of the sample (any unbiased part of it), ``weights`` theirs.
    A set whose files state different conventions is refused: one model cannot carry both.
    """
    stated = {convention_of_metadata(f["metadata"]["beam_spot"]) for f in files if "beam_spot" in f.get("metadata", {})}
    if len(stated) > 1:
        raise UserError("the sample set mixes spotless files and files with a beam spot painted: train them apart")
    every_file_states = all("beam_spot" in f.get("metadata", {}) for f in files)
    if stated and every_file_states:
        convention = stated.pop()
        source = "the training sample's metadata (beam_spot)"
    else:
        radius = np.hypot(muons[:, 1].astype(np.float64), muons[:, 2].astype(np.float64))
        total = float(weights.sum())
        core = float(weights[radius < CORE_RADIUS_CM].sum()) / total if total > 0 else 0.0
        on_axis = float(weights[radius == 0].sum()) / total if total > 0 else 0.0
        convention = SPOTLESS if core >= SPOTLESS_CORE_SHARE else PAINTED
        source = (
            f"inferred from the start radii: {core:.1%} of the weight within 1 mm of the beam axis, "
            f"{on_axis:.1%} exactly on it"
        )
    return {
        "convention": convention,
        "fairship_flags": FAIRSHIP_FLAGS[convention],
        "description": DESCRIPTIONS[convention],
        "source": source,
    }
