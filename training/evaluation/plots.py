"""The evaluation's own figures: the tail table (goal 2) and the boosted ESS gain (goal 4)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from training.evaluation.verdict import ESS_GOAL, TAIL_BAND


def tails_figure(rows: list[dict[str, Any]], joint_tail: dict[str, Any] | None = None) -> Figure:
    """Generated / reference rate per cut with its Poisson error and, just below it where the reference
    records its independent batches of protons, its shower-aware error; grey where the reference has too
    few muons to judge. A row where one side has no muon above the cut (a ratio of 0, or none) cannot sit
    on the log axis: it is drawn at the axis's left edge, in red, and says which side is empty.

    Where the shield region was judged on a tail-biased reference (``joint_tail``,
    :mod:`training.evaluation.joint_tail`), its row shows that judgement: the unbiased reference holds a few
    dozen muons there, the tail-biased one thousands of effective muons."""
    if joint_tail is not None and joint_tail["judged"]:
        rows = [_joint_row(joint_tail) if _same(row["conditions"], joint_tail["conditions"]) else row for row in rows]
    figure = Figure(figsize=(11, 0.45 * len(rows) + 1.8), layout="constrained")
    ax = figure.subplots()
    y = np.arange(len(rows))[::-1]
    edge = 0.5 * min([1 - TAIL_BAND, *(row["ratio"] for row in rows if row["ratio"])])
    for row, position in zip(rows, y, strict=True):
        colour = "C0" if row["enough"] else "0.6"
        if not row["ratio"]:
            empty = "no generated muon above the cut" if row["ratio"] == 0 else "no reference muon above the cut"
            ax.plot(edge, position, marker="<", color="C3" if row["enough"] else "0.6", markersize=9)
            ax.annotate(empty, (edge, position), xytext=(9, 0), textcoords="offset points", va="center", color="C3")
            continue
        ax.errorbar(row["ratio"], position, xerr=row["ratio_error"] or 0.0, fmt="o", color=colour, capsize=3)
        if row.get("ratio_shower_error") is not None:
            ax.errorbar(
                row["ratio"],
                position - 0.25,
                xerr=row["ratio_shower_error"],
                fmt="none",
                color=colour,
                capsize=2,
                lw=0.8,
            )
    ax.axvspan(1 - TAIL_BAND, 1 + TAIL_BAND, color="C2", alpha=0.15, label=f"goal: within +-{TAIL_BAND:.0%}")
    ax.axvline(1.0, color="k", lw=0.8)
    labels = [f"{row['cut']}  [ref {row['reference']['n']:,}, gen {row['generated']['n']:,}]" for row in rows]
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_xscale("log")
    ax.set_xlim(left=edge / 1.5)
    ax.set_xlabel("generated / reference rate above the cut")
    figure.supxlabel(
        "errors: Poisson (dot), counting showers (thin, below it, where the reference records its batches of protons;\n"
        "the tail-biased row's: over those batches); grey: fewer than 300 reference muons there",
        fontsize="small",
    )
    ax.legend(loc="upper left", fontsize="small")
    return figure


def _same(conditions: list[Any], others: list[Any]) -> bool:
    """Whether two cuts' conditions agree, as tuples or as the lists JSON makes of them."""
    return [tuple(c) for c in conditions] == [tuple(c) for c in others]


def _joint_row(joint: dict[str, Any]) -> dict[str, Any]:
    """The shield region's row of the tail figure, from the joint tail's judgement (errors over blocks)."""
    reference = joint["reference"]
    return {
        "cut": f"{joint['region']}, tail-biased reference (ESS {reference['effective']:,.0f})",
        "ratio": joint["ratio"],
        "ratio_error": joint["ratio_error"],
        "enough": True,
        "reference": {"n": reference["n"]},
        "generated": {"n": joint["plain"]["n"]},
    }


def ess_figure(ess: dict[str, Any]) -> Figure:
    """Per group: muons above the plain 99.9% quantile per muon generated, plain vs boosted ESS."""
    groups = list(ess["groups"])
    plain = [ess["groups"][g]["plain_per_muon"] for g in groups]
    boosted = [ess["groups"][g]["boosted_ess_per_muon"] for g in groups]
    figure = Figure(figsize=(9, 5), layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(groups))
    ax.bar(x - 0.2, plain, 0.4, label="plain: muons above per muon generated")
    ax.bar(x + 0.2, boosted, 0.4, label=f"boosted x{ess['scale']:g} in that group: ESS above per muon generated")
    ax.scatter(x + 0.2, [ESS_GOAL * p for p in plain], marker="_", s=600, color="k", zorder=3, label="goal: 10x plain")
    for i, group in enumerate(groups):
        gain = ess["groups"][group]["gain"]
        ax.annotate(f"{gain:.1f}x", (x[i] + 0.2, boosted[i]), ha="center", va="bottom", fontsize="small")
    names = [f"{g} ({ess['groups'][g]['variable']} > {ess['groups'][g]['threshold']:.4g})" for g in groups]
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylim(top=10 * max(boosted))  # room for the legend above the bars
    ax.set_ylabel(f"per muon generated, above the plain {100 * ess['quantile']:g}% quantile")
    ax.legend(fontsize="small", loc="upper left")
    return figure
