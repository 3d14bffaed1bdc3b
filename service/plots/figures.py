"""The plots a user asks for by name (``muongan plot --kind``, ``GET /v1/plot?kind=``), rendered to PNG.

The drawing itself is :mod:`service.plots.drawing` (shared with the training report); this module only names
the kinds, titles the figure with what the muons are, and fixes the resolution so that a PNG's pixel
size is ``figure size x dpi`` whoever renders it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from service.plots import drawing

if TYPE_CHECKING:
    from service.engine.generation import Engine

KINDS: dict[str, Callable[..., Figure]] = {"kinematics": drawing.kinematics_grid, "p_pt": drawing.p_pt}
DPI = 100


def figure(kind: str, muons: np.ndarray, label: str, title: str = "") -> Figure:
    """The figure of one kind for a canonical ``(n, 8)`` sample; ``label`` names the panels."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; expected one of {', '.join(KINDS)}")
    if len(muons) == 0:
        raise ValueError("cannot plot an empty sample")
    drawn = KINDS[kind](muons, labels=[label])
    if title:
        drawn.suptitle(title)
    return drawn


def png(kind: str, muons: np.ndarray, label: str, title: str = "", dpi: int = DPI) -> bytes:
    """PNG bytes of :func:`figure`, ``dpi`` pixels per inch of the figure's size."""
    drawn = figure(kind, muons, label, title)
    drawn.set_dpi(dpi)
    return drawing.to_png(drawn)


def describe(muons: np.ndarray, muons_per_pot: float | None = None) -> str:
    """A one-line summary for a figure title: muon count, weight sum and, if known, protons on target."""
    weight_sum = float(muons[:, -1].astype(np.float64).sum())
    text = f"{len(muons):,} muons, sum of weights {weight_sum:,.6g}"
    if muons_per_pot:
        text += f", {weight_sum / muons_per_pot:.4g} POT"
    return text


@dataclass(frozen=True)
class Plotted:
    """Muons to plot, with the panel label and figure title that say what they are."""

    muons: np.ndarray
    label: str
    title: str
    equivalent_pot: float | None

    @classmethod
    def of_sample(cls, muons: np.ndarray, label: str, muons_per_pot: float | None) -> Plotted:
        pot = float(muons[:, -1].astype(np.float64).sum()) / muons_per_pot if muons_per_pot else None
        return cls(muons, label, describe(muons, muons_per_pot), pot)


def from_model(engine: Engine, n: int, seed: int, start: int) -> Plotted:
    """Plain muons ``[start, start + n)`` of ``seed`` from a model, as the service would send them."""
    from service.engine.generation import Request

    manifest = engine.manifest
    muons, prepared = engine.generate(Request(seed, start, n, engine.plain_source()))
    label = f"{manifest.name}: seed {seed}, muons {start:,} to {start + n:,}"
    pot = prepared.weight_sum / manifest.muons_per_pot
    return Plotted(muons, label, describe(muons, manifest.muons_per_pot), pot)
