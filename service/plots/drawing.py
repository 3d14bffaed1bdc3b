"""Plots of muon samples as PNG: shared by the training report, ``GET /v1/plot`` and ``muongan plot``.

matplotlib's object API on the Agg canvas (no pyplot, so no global state and safe in server
threads). All histograms honour the ``weight`` column. Each function takes one or more canonical
``(n, 8)`` arrays; several samples are drawn side by side (or overlaid in 1-D) with shared binning
so generated and reference compare at a glance.

What a reader needs to trust a panel is on it: an axis whose range cuts a tail says how many muons went
into its edge bins; the log colour scale stops at ``COLOUR_FLOOR`` of the brightest bin (weighted
samples reach 1e-43 otherwise and the bulk becomes one colour), bins below it drawn in light grey and
the colour bar saying so; colour bars carry at least two labelled ticks even over less than a decade
(a 1,000-muon plot).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

from service.contract.muons import PHYSICAL_COLUMNS, UNITS

DERIVED_UNITS = {**UNITS, "p": "GeV/c", "pt": "GeV/c"}
LABELS = {"p": "|p|", "pt": "pT"}
PAIRS: tuple[tuple[str, str], ...] = (("x", "y"), ("z", "x"), ("px", "py"), ("pz", "pt"), ("z", "pz"), ("x", "px"))
ONE_D: tuple[str, ...] = (*PHYSICAL_COLUMNS, "p", "pt")
_BINS = 80
_TAIL = 1e-4  # 2-D axes span the 0.01%..99.99% quantiles; entries outside go into the edge bins
_WRAP = 3  # panels per row when a single sample is drawn
COLOUR_FLOOR = 1e-6  # the log colour scale spans at most this fraction of the brightest bin to it
_CMAP = colormaps["viridis"].with_extremes(under="0.8")  # bins below the floor: light grey


def observables(muons: np.ndarray) -> dict[str, np.ndarray]:
    """Physical columns plus ``p`` (|p|) and ``pt`` as float64, from canonical ``(n, 8)`` muons."""
    columns = {name: muons[:, i].astype(np.float64) for i, name in enumerate(PHYSICAL_COLUMNS)}
    columns["pt"] = np.hypot(columns["px"], columns["py"])
    columns["p"] = np.sqrt(columns["pt"] ** 2 + columns["pz"] ** 2)
    return columns


def axis_label(name: str) -> str:
    unit = DERIVED_UNITS.get(name, "")
    label = LABELS.get(name, name)
    return f"{label} [{unit}]" if unit else label


def cut_label(name: str, values: Sequence[np.ndarray], low: float, high: float) -> str:
    """The axis label, saying which share of the muons lies beyond ``[low, high]`` (drawn in the edge bins)."""
    outside = sum(int(np.count_nonzero((v < low) | (v > high))) for v in values)
    if not outside:
        return axis_label(name)
    return f"{axis_label(name)} (tails cut: {100 * outside / sum(len(v) for v in values):.2g}% in edge bins)"


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _edges(values: Sequence[np.ndarray], bins: int, tail: float = 0.0) -> np.ndarray:
    """Bins over all values, or over their ``tail``..``1 - tail`` quantiles so one outlier cannot squeeze the bulk."""
    pooled = np.concatenate([v for v in values if len(v)] or [np.zeros(1)])
    # inverted_cdf: a quantile is a sample value, so a sample with fewer than 1/tail muons keeps its extremes
    low, high = (float(q) for q in np.quantile(pooled, [tail, 1.0 - tail], method="inverted_cdf"))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def compare_1d(
    generated: np.ndarray, reference: np.ndarray, labels: tuple[str, str] = ("generated", "reference")
) -> Figure:
    """Weighted, normalised 1-D distributions (log y) of every column plus |p| and pT.

    Bins span the reference; generated values outside are clipped into the edge bins so that
    spurious tails stay visible.
    """
    samples = [observables(generated), observables(reference)]
    weights = [generated[:, -1], reference[:, -1]]
    figure = Figure(figsize=(20, 8), layout="constrained")
    axes = figure.subplots(2, 5).ravel()
    for ax, name in zip(axes, ONE_D, strict=False):
        edges = np.array([-14.0, -12.0, 12.0, 14.0]) if name == "pdg" else _edges([samples[1][name]], _BINS)
        for sample, weight, label, colour in zip(samples, weights, labels, ("C0", "k"), strict=True):
            clipped = np.clip(sample[name], edges[0], edges[-1])
            ax.hist(clipped, edges, weights=weight / weight.sum(), histtype="step", color=colour, label=label)
        ax.set_yscale("log")
        ax.set_xlabel(
            axis_label(name) if name == "pdg" else cut_label(name, [s[name] for s in samples], *edges[[0, -1]])
        )
        ax.set_ylabel("fraction per bin")
    axes[0].legend()
    for ax in axes[len(ONE_D) :]:
        ax.set_visible(False)
    return figure


def _grid_2d(
    samples: Sequence[np.ndarray], labels: Sequence[str], pairs: Sequence[tuple[str, str]], cell: float
) -> Figure:
    """One row per sample, one column per pair; shared bins and colour scale within a column.

    A single sample's pairs wrap onto rows of ``_WRAP`` panels, so the figure stays near square
    instead of becoming one long strip.
    """
    columns = [observables(muons) for muons in samples]
    single = len(samples) == 1
    shape = (-(-len(pairs) // _WRAP), min(len(pairs), _WRAP)) if single else (len(samples), len(pairs))
    figure = Figure(figsize=(cell * shape[1] + 1, cell * shape[0]), layout="constrained")
    grid = figure.subplots(*shape, squeeze=False)
    for ax in grid.flat[len(samples) * len(pairs) :]:
        ax.set_visible(False)
    axes = grid.reshape(1, -1)[:, : len(pairs)] if single else grid  # axes[i, j]: sample i, pair j
    for j, (a, b) in enumerate(pairs):
        edges_a = _edges([c[a] for c in columns], _BINS, _TAIL)
        edges_b = _edges([c[b] for c in columns], _BINS, _TAIL)
        histograms = [
            np.histogram2d(
                np.clip(c[a], edges_a[0], edges_a[-1]),  # outliers land in the edge bins, still visible
                np.clip(c[b], edges_b[0], edges_b[-1]),
                [edges_a, edges_b],
                weights=m[:, -1] / m[:, -1].sum(),
            )[0]
            for c, m in zip(columns, samples, strict=True)
        ]
        low, high, floored = _colour_range(histograms)
        norm = LogNorm(low, high)
        for i, (histogram, c) in enumerate(zip(histograms, columns, strict=True)):
            ax = axes[i, j]
            mesh = ax.pcolormesh(edges_a, edges_b, np.ma.masked_equal(histogram.T, 0), norm=norm, cmap=_CMAP)
            ax.set_xlabel(cut_label(a, [c[a]], edges_a[0], edges_a[-1]))
            ax.set_ylabel(cut_label(b, [c[b]], edges_b[0], edges_b[-1]))
            ax.xaxis.set_major_locator(MaxNLocator(5))  # five-digit z ticks must not run into each other
            ax.set_title(labels[i], fontsize="small")
        label = f"weight fraction (grey: below {COLOUR_FLOOR:g} of max)" if floored else "weight fraction"
        bar = figure.colorbar(
            mesh, ax=axes[:, j], shrink=0.8, aspect=40, pad=0.01, label=label, extend="min" if floored else "neither"
        )
        _readable_ticks(bar.ax.yaxis, low, high)
    return figure


def _colour_range(histograms: Sequence[np.ndarray]) -> tuple[float, float, bool]:
    """The log colour scale's ends: the smallest filled bin, or ``COLOUR_FLOOR`` of the largest if that is
    higher (then ``True``: some bins lie below it, drawn grey), and the largest."""
    positive = np.concatenate([h[h > 0] for h in histograms])
    if not len(positive):
        return 0.1, 1.0, False
    high = float(positive.max())
    low = max(float(positive.min()), COLOUR_FLOOR * high)
    return (low if low < high else high / 10), high, bool(positive.min() < low)


def _readable_ticks(axis: Any, low: float, high: float) -> None:
    """Labelled ticks at decades over a wide range, at 1-2-5 (or finer) steps when it spans a decade or less."""
    decades = np.log10(high / low)
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_formatter(NullFormatter())


def kinematics_grid(*samples: np.ndarray, labels: Sequence[str] | None = None) -> Figure:
    """Pairs of features as weighted log-colour 2-D histograms; one row per sample."""
    return _grid_2d(samples, labels or ["muons"] * len(samples), PAIRS, cell=3.6)


def p_pt(*samples: np.ndarray, labels: Sequence[str] | None = None) -> Figure:
    """Weighted 2-D histogram of |p| against pT (log colour); one row per sample."""
    return _grid_2d(samples, labels or ["muons"] * len(samples), [("p", "pt")], cell=4.5)
