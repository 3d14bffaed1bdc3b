"""Plots of muon samples as PNG, shared by ``GET /v1/plot``, ``muongan plot`` and the training report.

:mod:`~service.plots.drawing` draws (weighted 2-D grids, 1-D comparisons); :mod:`~service.plots.figures`
names the kinds a user asks for and titles them.
"""

from service.plots.drawing import (
    COLOUR_FLOOR,
    PAIRS,
    compare_1d,
    cut_label,
    kinematics_grid,
    observables,
    p_pt,
    to_png,
)
from service.plots.figures import DPI, KINDS, Plotted, figure, from_model, png

__all__ = [
    "COLOUR_FLOOR",
    "DPI",
    "KINDS",
    "PAIRS",
    "Plotted",
    "compare_1d",
    "cut_label",
    "figure",
    "from_model",
    "kinematics_grid",
    "observables",
    "p_pt",
    "png",
    "to_png",
]
