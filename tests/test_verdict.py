"""The verdict against the project's goals: judged from real figures, recorded by train, drawn in tails.png
without hiding empty rows, and warned about by ``muongan serve``."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from matplotlib.text import Annotation

from service.contract.manifest import Manifest
from training.evaluation.plots import tails_figure
from training.evaluation.verdict import FAIL, GOALS, INCOMPLETE, NOT_MEASURED, PASS, lines, verdict

ROOT = Path(__file__).resolve().parents[1]
MUONGAN = str(Path(sys.executable).parent / "muongan")
SOURCE = {"command": "evaluate", "description": "a test"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    """The evaluation recorded for models/default: real figures, two goals missed (README)."""
    manifest = json.loads((ROOT / "models" / "default" / "model.json").read_text())
    figures: dict[str, Any] = manifest["figures_of_merit"]["evaluation"]
    return figures


JOINT_GOALS = {goal.name for goal in GOALS if goal.name.startswith("joint tail")}
MISSED = {"two-sample classifier AUC", "tail rates, generated / reference"}


@pytest.fixture(scope="module")
def passing(shipped: dict[str, Any]) -> dict[str, Any]:
    """The shipped figures with what they miss made good: AUCs of 0.52, every judged tail row at its reference's
    rate, and a joint tail judged within its goals (as a tail-biased reference would)."""
    from test_joint_tail import _judged

    good = copy.deepcopy(shipped)
    for key in ("classifier_auc", "classifier_auc_painted"):
        good[key] = {**good[key], "mean": 0.52, "values": [0.52] * len(good[key]["values"])}
    for row in good["tails"]:
        row["generated"], row["ratio"] = dict(row["reference"]), 1.0
    good["joint_tail"] = _judged(effective=4000, ratio=1.05, gain=30.0, pull=0.4)
    return good


def _no_tail_muons(figures: dict[str, Any]) -> dict[str, Any]:
    """The same figures as a 1,000-step model gives them: AUC 0.97 and no muon in any tail."""
    bad = copy.deepcopy(figures)
    bad["classifier_auc"] = {"mean": 0.97, "std": 0.001, "values": [0.97], "columns": []}
    for row in bad["tails"]:
        row["generated"] = {"n": 0, "rate": 0.0, "error": 0.0}
        row["ratio"], row["ratio_error"] = 0.0, None
    return bad


def test_the_shipped_verdict_names_what_it_misses(shipped: dict[str, Any]) -> None:
    """The default model's own figures: two goals missed, the joint tail judged on a tail-biased reference
    and met, and the verdict recorded with them in model.json is this one."""
    judged = verdict(shipped, SOURCE)
    results = {row["goal"]: row["result"] for row in judged["goals"]}
    assert JOINT_GOALS and results == {goal.name: FAIL if goal.name in MISSED else PASS for goal in GOALS}
    assert shipped["joint_tail"]["judged"] and shipped["joint_tail"]["reference"]["effective"] >= 1000
    assert judged["overall"] == FAIL and judged["goals"][0]["value"] == shipped["classifier_auc"]["mean"]
    printed = lines(judged)
    assert len(printed) == len(GOALS) + 1 and printed[-1].startswith("verdict: FAIL: 2 of 9 goals missed")
    assert "effective reference muons" in "\n".join(printed)
    recorded = json.loads((ROOT / "models" / "default" / "model.json").read_text())["figures_of_merit"]["verdict"]
    assert recorded["goals"] == json.loads(json.dumps(judged))["goals"]  # it goes into model.json as it is


def test_a_spotless_evaluation_is_judged_on_its_radial_profile(passing: dict[str, Any]) -> None:
    from test_radial import _spotless

    from training.evaluation.radial import radial_profile

    good = verdict(passing, SOURCE)
    assert good["overall"] == PASS and [row["result"] for row in good["goals"]] == [PASS] * len(GOALS)
    wide = copy.deepcopy(passing)
    wide["radial_profile"] = radial_profile(_spotless(100000, 1, 5.0), _spotless(100000, 2))
    judged = verdict(wide, SOURCE)
    results = {row["goal"]: row["result"] for row in judged["goals"]}
    assert judged["overall"] == FAIL and results[GOALS[2].name] == FAIL
    assert "furthest from 1" in "\n".join(lines(judged))


def test_a_model_with_no_tail_muons_fails_and_says_why(passing: dict[str, Any]) -> None:
    judged = verdict(_no_tail_muons(passing), SOURCE)
    results = {row["goal"]: row["result"] for row in judged["goals"]}
    assert judged["overall"] == FAIL
    assert results["two-sample classifier AUC"] == results["tail rates, generated / reference"] == FAIL
    assert results["unphysical muons"] == PASS
    printed = "\n".join(lines(judged))
    assert "FAIL         two-sample classifier AUC (goal <= 0.53): 0.9700" in printed
    assert "with no generated muon at all" in printed and f"2 of {len(GOALS)} goals missed" in printed


def test_unmeasured_goals_leave_the_verdict_incomplete(passing: dict[str, Any]) -> None:
    partial = {key: value for key, value in passing.items() if key != "boosted_ess"}
    judged = verdict(partial, SOURCE)
    results = {row["goal"]: row["result"] for row in judged["goals"]}
    assert judged["overall"] == INCOMPLETE and results["boosted ESS gain above the 99.9% quantile"] == NOT_MEASURED
    one_unphysical = copy.deepcopy(partial)
    one_unphysical["physical_checks"]["plain"]["violations"]["pz_not_positive"] = 1
    assert verdict(one_unphysical, SOURCE)["overall"] == FAIL  # a failure outranks what is not measured


def test_tails_png_shows_the_rows_where_the_model_makes_no_muon(shipped: dict[str, Any]) -> None:
    rows = _no_tail_muons(shipped)["tails"][:3] + shipped["tails"][3:]
    ax = tails_figure(rows).axes[0]
    notes = [text for text in ax.texts if isinstance(text, Annotation)]
    assert [note.get_text() for note in notes] == ["no generated muon above the cut"] * 3
    left, right = ax.get_xlim()
    assert all(0 < left < note.xy[0] < right for note in notes)  # on the axis, not dropped off a log scale


def test_tails_png_shows_the_judged_shield_region(shipped: dict[str, Any]) -> None:
    """The shield region's row is the tail-biased reference's judgement, not the unbiased reference's few muons."""
    joint = shipped["joint_tail"]
    ax = tails_figure(shipped["tails"], joint).axes[0]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    shield = [i for i, label in enumerate(labels) if "tail-biased reference (ESS" in label]
    assert len(shield) == 1 and f"ref {joint['reference']['n']:,}, gen {joint['plain']['n']:,}" in labels[shield[0]]
    drawn = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"]
    assert joint["ratio"] in drawn
    unbiased = next(row for row in shipped["tails"] if row["conditions"] == joint["conditions"])
    assert unbiased["ratio"] not in drawn and len(labels) == len(shipped["tails"])


def test_train_records_what_it_can_judge(tiny_model: Path) -> None:
    judged = Manifest.load(tiny_model).figures_of_merit["verdict"]
    assert judged["source"]["command"] == "train" and "held-out part" in judged["source"]["description"]
    results = {row["goal"]: row["result"] for row in judged["goals"]}
    assert results["boosted ESS gain above the 99.9% quantile"] == NOT_MEASURED
    assert results["unphysical muons"] == PASS  # the generator is physical by construction
    assert judged["overall"] in (FAIL, INCOMPLETE)


def _serve_log(model: Path) -> str:
    """What ``muongan serve`` logs until its application has started."""
    server = subprocess.Popen(
        [MUONGAN, "serve", "--model", str(model), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    assert server.stderr is not None
    log, deadline = [], time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            log.append(line)
            if "Application startup complete" in line or not line:
                break
    finally:
        server.terminate()
        server.wait(timeout=30)
    return "".join(log)


def _with_verdict(model: Path, folder: Path, judged: dict[str, Any] | None) -> Path:
    shutil.copytree(model, folder)
    manifest = Manifest.load(folder)
    figures = {key: value for key, value in manifest.figures_of_merit.items() if key != "verdict"}
    manifest.model_copy(update={"figures_of_merit": figures | ({"verdict": judged} if judged else {})}).save(folder)
    return folder


def test_serve_warns_about_a_model_that_fails_the_goals(
    tiny_model: Path, shipped: dict[str, Any], tmp_path: Path
) -> None:
    failing = _with_verdict(tiny_model, tmp_path / "failing", verdict(_no_tail_muons(shipped), SOURCE))
    log = _serve_log(failing)
    assert "Application startup complete" in log, log
    [warning] = [line for line in log.splitlines() if " WARNING " in line]
    assert "FAILS the project's goals (a test): two-sample classifier AUC 0.9700" in warning
    silent = _serve_log(_with_verdict(tiny_model, tmp_path / "silent", None))
    assert "records no verdict" in silent and " WARNING " not in silent
