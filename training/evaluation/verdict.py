"""Is the model good enough? Its figures against the project's stated goals, one line each, and a verdict.

The goals are those the README states ("What the default model is worth"). Each is a row of
:data:`GOALS`: what it asks, and how to read its measured value from figures shaped as ``muongan
evaluate`` writes them (``evaluation.json``). A goal whose figure is absent is "not measured" (``muongan
train`` measures only some on its held-out part), and the verdict is then incomplete rather than passed.
A goal added to the table is judged, printed and recorded in ``model.json`` wherever the verdict is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.evaluation.radial import PROFILE_BAND

AUC_GOAL = 0.53
TAIL_BAND = 0.15
ESS_GOAL = 10.0
JOINT_BAND = 0.20
PULL_LIMIT = 3.0

PASS, FAIL, NOT_MEASURED, INCOMPLETE = "PASS", "FAIL", "NOT MEASURED", "INCOMPLETE"


@dataclass(frozen=True)
class Measured:
    """A goal's value, one number the goal compares, and how it reads for a person."""

    value: float
    shown: str


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measure: Callable[[dict[str, Any]], Measured | str]  # a value, or why there is none
    meets: Callable[[float], bool]


def _auc(figures: dict[str, Any], key: str = "classifier_auc") -> Measured | str:
    if key not in figures:
        return f"no {key.replace('_', ' ')} in the figures"
    auc = figures[key]
    std = f" +- {auc['std']:.4f}" if auc.get("std") is not None else ""
    return Measured(auc["mean"], f"{auc['mean']:.4f}{std} at {figures['n_per_side']:,} muons a side")


def _tails(figures: dict[str, Any]) -> Measured | str:
    if "tails" not in figures:
        return "no tail table in the figures"
    judged = [row for row in figures["tails"] if row["enough"]]
    if not judged:
        return "no tail row has the 300 reference muons it takes to be judged: a larger reference"
    worst = max(judged, key=lambda row: abs((row["ratio"] or 0.0) - 1))
    ratio = worst["ratio"] or 0.0  # no generated muon above the cut: a ratio of 0
    missing = sum(1 for row in judged if row["generated"]["n"] == 0)
    empty = f"; {missing} with no generated muon at all" if missing else ""
    shown = f"{len(judged)} rows judged, furthest from 1: {ratio:.2f} ({worst['cut']}){empty}"
    return Measured(abs(ratio - 1), shown)


def _radial(figures: dict[str, Any]) -> Measured | str:
    if "radial_profile" not in figures:
        return "no radial profile in the figures (muongan evaluate measures it)"
    judged = [row for row in figures["radial_profile"]["rows"] if row["judged"]]
    if not judged:
        return "no share of the reference above 0.1%"
    worst = max(judged, key=lambda row: abs((row["ratio"] or 0.0) - 1))
    ratio = worst["ratio"] or 0.0
    return Measured(abs(ratio - 1), f"{len(judged)} shares judged, furthest from 1: {ratio:.3f} ({worst['cut']})")


def _physical(figures: dict[str, Any]) -> Measured | str:
    if "physical_checks" not in figures:
        return "no physical checks in the figures"
    checks = figures["physical_checks"].values()
    unstated = sum(1 for check in checks for count in check["violations"].values() if count is None)
    bad = sum(count for check in checks for count in check["violations"].values() if count is not None)
    made = sum(check["n"] for check in checks)
    why = f"; {unstated} checks the model's region cannot state, counted as failed" if unstated else ""
    samples = f"{len(checks)} sample{'s' if len(checks) != 1 else ''}"
    return Measured(bad + unstated, f"{bad:,} of {made:,} muons in {samples}{why}")


def _ess(figures: dict[str, Any]) -> Measured | str:
    if "boosted_ess" not in figures:
        return "boosted generation not measured (muongan evaluate measures it)"
    groups = figures["boosted_ess"]["groups"]
    gains = ", ".join(f"{group} {values['gain']:.0f}x" for group, values in groups.items())
    return Measured(min(values["gain"] for values in groups.values()), f"lowest of {gains}")


def _joint(figures: dict[str, Any]) -> dict[str, Any] | str:
    """The joint-tail figures where they can be judged, else why not."""
    if "joint_tail" not in figures:
        return "the joint tail was not measured (muongan evaluate measures it)"
    joint: dict[str, Any] = figures["joint_tail"]
    if not joint["judged"]:
        effective = joint["reference"]["effective"]
        return (
            f"the reference has {effective:,.0f} effective muons there, {joint['min_effective']:,} needed: "
            "pass a tail-biased one (muongan sample --bias tail) as --joint-tail"
        )
    return joint


def _joint_rate(figures: dict[str, Any]) -> Measured | str:
    joint = _joint(figures)
    if isinstance(joint, str):
        return joint
    ratio, error = joint["ratio"] or 0.0, joint["ratio_error"]
    spread = f" +- {error:.2f}" if error is not None else ""
    shown = (
        f"{ratio:.2f}{spread} ({joint['plain']['n']:,} of {joint['plain']['muons']:,} generated muons, "
        f"{joint['reference']['effective']:,.0f} effective reference muons)"
    )
    return Measured(abs(ratio - 1), shown)


def _joint_boost(figures: dict[str, Any]) -> Measured | str:
    joint = _joint(figures)
    if isinstance(joint, str):
        return joint
    if joint["boosted_gain"] is None:
        return "plain generation made no muon there: a larger --n-joint"
    shown = f"{joint['boosted_gain']:.1f}x ({joint['boosted']['effective']:,.0f} effective muons)"
    return Measured(joint["boosted_gain"], shown)


def _joint_agreement(figures: dict[str, Any]) -> Measured | str:
    joint = _joint(figures)
    if isinstance(joint, str):
        return joint
    if joint["boosted_pull"] is None or joint["plain"]["n"] == 0:
        return "plain generation made no muon there: a larger --n-joint"
    pull = joint["boosted_pull"]
    shown = f"pull {pull:+.2f} (boosted {joint['boosted']['rate']:.3g}, plain {joint['plain']['rate']:.3g})"
    return Measured(abs(pull), shown)


GOALS = (
    Goal("two-sample classifier AUC", f"<= {AUC_GOAL}", _auc, lambda auc: auc <= AUC_GOAL),
    Goal(
        "the same AUC with FairShip's default beam spot painted on both samples",
        f"<= {AUC_GOAL}",
        lambda figures: _auc(figures, "classifier_auc_painted"),
        lambda auc: auc <= AUC_GOAL,
    ),
    Goal(
        "radial profile: shares at r = 0 and below 1 um, 10 um, 0.1 mm, 1 mm, 1 cm, 5 cm",
        f"every share above 0.1% within +-{PROFILE_BAND:.0%}",
        _radial,
        lambda off: off <= PROFILE_BAND + 1e-12,
    ),
    Goal(
        "tail rates, generated / reference",
        f"every judged row within +-{TAIL_BAND:.0%}",
        _tails,
        lambda off: off <= TAIL_BAND + 1e-12,
    ),
    Goal("unphysical muons", "0", _physical, lambda count: count == 0),
    Goal("boosted ESS gain above the 99.9% quantile", f">= {ESS_GOAL:g}x", _ess, lambda gain: gain >= ESS_GOAL),
    Goal(
        "joint tail |p| > 100 GeV/c and pT > 3 GeV/c: plain rate / reference",
        f"within +-{JOINT_BAND:.0%}",
        _joint_rate,
        lambda off: off <= JOINT_BAND + 1e-12,
    ),
    Goal(
        "joint tail: boosted (pT, pz x2) ESS per generated muon / plain's",
        f">= {ESS_GOAL:g}x",
        _joint_boost,
        lambda gain: gain >= ESS_GOAL,
    ),
    Goal(
        "joint tail: boosted weighted rate agrees with plain",
        f"|pull| <= {PULL_LIMIT:g}",
        _joint_agreement,
        lambda pull: pull <= PULL_LIMIT,
    ),
)


def verdict(figures: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The verdict on ``figures`` (shaped as ``evaluation.json``), JSON-able: each goal with its value and
    result, the overall result, and ``source``, the evaluation the figures came from."""
    goals = []
    for goal in GOALS:
        measured = goal.measure(figures)
        row: dict[str, Any]
        if isinstance(measured, str):
            row = {"value": None, "shown": measured, "result": NOT_MEASURED}
        else:
            result = PASS if goal.meets(measured.value) else FAIL
            row = {"value": measured.value, "shown": measured.shown, "result": result}
        goals.append({"goal": goal.name, "target": goal.target, **row})
    results = {row["result"] for row in goals}
    overall = FAIL if FAIL in results else INCOMPLETE if NOT_MEASURED in results else PASS
    return {"overall": overall, "goals": goals, "source": source}


def lines(judged: dict[str, Any]) -> list[str]:
    """The verdict for a person: one line per goal, then the overall line."""
    rows = [f"{row['result']:<12} {row['goal']} (goal {row['target']}): {row['shown']}" for row in judged["goals"]]
    return [*rows, f"verdict: {judged['overall']}: {summary(judged)}"]


def summary(judged: dict[str, Any]) -> str:
    """One sentence: which goals failed or went unmeasured, against what."""
    failed = [row["goal"] for row in judged["goals"] if row["result"] == FAIL]
    unmeasured = [row["goal"] for row in judged["goals"] if row["result"] == NOT_MEASURED]
    parts = [f"{len(failed)} of {len(judged['goals'])} goals missed ({'; '.join(failed)})"] if failed else []
    parts += [f"not measured: {'; '.join(unmeasured)}"] if unmeasured else []
    return ", ".join(parts or ["every goal met"]) + f" ({judged['source']['description']})"
