"""The PNG report beside a model: generated vs reference, drawn by :mod:`service.plots`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.plots import compare_1d, kinematics_grid, p_pt, to_png

LABELS = ("generated", "reference")


def write_report(folder: Path, generated: np.ndarray, reference: np.ndarray) -> list[Path]:
    """``report_1d.png``, ``report_2d.png`` and ``report_p_pt.png`` in ``folder``; returns the paths."""
    figures = {
        "report_1d.png": compare_1d(generated, reference, LABELS),
        "report_2d.png": kinematics_grid(generated, reference, labels=LABELS),
        "report_p_pt.png": p_pt(generated, reference, labels=LABELS),
    }
    paths = []
    for name, figure in figures.items():
        path = folder / name
        path.write_bytes(to_png(figure))
        paths.append(path)
    return paths
