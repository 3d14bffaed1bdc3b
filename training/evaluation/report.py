"""The PNG report: generated vs reference, drawn by :mod:`service.plots`, each figure titled with what it
shows (model, reference sample, muons per side, classifier AUC) so that a PNG passed around alone still
says what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from service.plots import compare_1d, kinematics_grid, p_pt, to_png

LABELS = ("generated", "reference")


def title(model: str, reference: str, n: int, auc: str) -> str:
    return f"model {model} vs reference {reference}\nn = {n:,} muons a side, classifier AUC {auc}"


def save(figure: Figure, path: Path, heading: str) -> Path:
    figure.suptitle(heading, fontsize="large" if figure.get_figwidth() >= 8 else "small")  # narrow |p|-pT panel
    path.write_bytes(to_png(figure))
    return path


def write_report(folder: Path, generated: np.ndarray, reference: np.ndarray, heading: str) -> list[Path]:
    """``report_1d.png``, ``report_2d.png`` and ``report_p_pt.png`` in ``folder``; returns the paths."""
    figures = {
        "report_1d.png": compare_1d(generated, reference, LABELS),
        "report_2d.png": kinematics_grid(generated, reference, labels=LABELS),
        "report_p_pt.png": p_pt(generated, reference, labels=LABELS),
    }
    return [save(figure, folder / name, heading) for name, figure in figures.items()]
