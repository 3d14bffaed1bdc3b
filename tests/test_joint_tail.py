"""The joint tail |p| > 100 and pT > 3 GeV/c: judged by ``muongan evaluate`` on the whole of a real tail-biased
reference, with weighted sums and errors over its blocks, against plain and boosted generation made a block at
a time; and its three goals in the verdict."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from muongan.cli import main
from service.engine.generation import Engine, Request
from service.engine.model import Model
from service.samples import Sample, write_sample
from training.evaluation import joint_tail as joint
from training.evaluation.showers import block_sums
from training.evaluation.verdict import FAIL, GOALS, NOT_MEASURED, PASS, verdict
from training.reference.driver import generate
from training.reference.settings import BLOCKS, SourceSettings

JOINT_GOALS = [goal.name for goal in GOALS if goal.name.startswith("joint tail")]


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tail-biased reference of 1,000 protons on target (its joint tail is as good as empty:
    the figures' arithmetic is checked on a populated one in the tests above)."""
    path = tmp_path_factory.mktemp("joint") / "biased.parquet"
    settings = replace(SourceSettings(task_pot=1000), tail_biasing=True)
    write_sample(generate(1000, seed=31, settings=settings, progress=False), path)
    return path


def _in_region(table: dict[str, np.ndarray]) -> np.ndarray:
    pt = np.hypot(table["px"], table["py"])
    return (np.sqrt(pt**2 + table["pz"] ** 2) > 100) & (pt > 3)


def _weighted_muons(n: int, seed: int) -> np.ndarray:
    """Muons with a populated joint tail and weights spread over decades, as a biased reference has them."""
    rng = np.random.default_rng(seed)
    muons = np.zeros((n, 8), dtype=np.float32)
    muons[:, 0] = 13
    muons[:, 3] = -7000
    muons[:, 4:6] = rng.normal(0, 2.5, (n, 2))
    muons[:, 6] = rng.exponential(40, n) + 1
    muons[:, 7] = rng.lognormal(0, 2, n)
    return muons


def _direct(muons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and region mask computed here, from the columns."""
    momentum = {name: muons[:, k].astype(np.float64) for k, name in ((4, "px"), (5, "py"), (6, "pz"))}
    return muons[:, 7].astype(np.float64), _in_region(momentum)


def test_region_sums_are_the_weighted_sums_streamed_block_by_block() -> None:
    muons = _weighted_muons(10_000, 5)
    sums = joint.RegionSums()
    for part in np.array_split(muons, 7):
        sums.add(part)
    figures = sums.figures()
    w, inside = _direct(muons)
    assert 50 < inside.sum() < 2000  # the region is populated, and not everything
    assert figures["n"] == inside.sum() and figures["muons"] == len(muons)
    assert figures["rate"] == pytest.approx(w[inside].sum() / w.sum(), rel=1e-12)
    assert figures["error"] == pytest.approx(np.sqrt(np.sum(w[inside] ** 2)) / w.sum(), rel=1e-12)
    assert figures["effective"] == pytest.approx(w[inside].sum() ** 2 / np.sum(w[inside] ** 2), rel=1e-12)
    assert figures["effective"] < inside.sum()  # unequal weights count for fewer muons


def test_the_reference_error_is_taken_over_its_blocks_across_files(tmp_path: Path) -> None:
    """Two files of one reference, each recording its blocks: the rate is the whole set's, the error the
    stratified one over all their blocks; without the record, the weighted Poisson error, and it says so."""
    muons = _weighted_muons(20_000, 6)
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for half, path in zip(np.array_split(muons, 2), paths, strict=True):
        blocks = {"rows": [2000] * 5, "run": ["cascade"] * 3 + ["charm"] * 2}
        write_sample(Sample(half, {BLOCKS: json.dumps(blocks)}), path)
    found = joint.reference_figures(paths, 0.0)
    w, inside = _direct(muons)
    assert found["rate"] == pytest.approx(w[inside].sum() / w.sum(), rel=1e-12)
    sums = block_sums(paths, [joint.REGION], 0.0)
    assert sums is not None and found["error"] == pytest.approx(sums.rate_errors()[0], rel=1e-12)
    assert found["error_from"] == "independent blocks of protons"
    bare = tmp_path / "bare.parquet"
    write_sample(Sample(muons, {}), bare)
    poisson = joint.reference_figures([bare], 0.0)
    assert poisson["error"] == pytest.approx(np.sqrt(np.sum(w[inside] ** 2)) / w.sum(), rel=1e-12)
    assert poisson["error_from"].startswith("weighted Poisson")


def test_evaluate_judges_the_joint_tail_on_the_whole_biased_reference(
    tiny_model: Path, tiny_sample: Path, biased: Path, tmp_path: Path
) -> None:
    argv = ["evaluate", "--model", str(tiny_model), "--reference", str(tiny_sample), "--out", str(tmp_path)]
    extra = ["--n", "1000", "--n-tails", "2000", "--seeds", "1", "--n-boosted", "1000"]
    assert main([*argv, *extra, "--joint-tail", str(biased), "--n-joint", "12000"]) == 0
    found = json.loads((tmp_path / "evaluation.json").read_text())["joint_tail"]

    table = pq.read_table(biased).to_pydict()
    columns = {name: np.asarray(table[name], dtype=np.float32).astype(np.float64) for name in ("px", "py", "pz")}
    w, inside = np.asarray(table["weight"], dtype=np.float32).astype(np.float64), _in_region(columns)
    reference = found["reference"]
    assert reference["muons"] == len(w) > 1000 and reference["n"] == inside.sum()
    assert reference["rate"] == pytest.approx(w[inside].sum() / w.sum(), rel=1e-9)
    assert reference["effective"] == pytest.approx(w[inside].sum() ** 2 / max(np.sum(w[inside] ** 2), 1e-300))
    blocks = block_sums([biased], [joint.REGION], 0.0)
    assert blocks is not None and reference["error_from"] == "independent blocks of protons"
    assert reference["error"] == pytest.approx(blocks.rate_errors()[0], rel=1e-12)
    assert found["judged"] is False  # 1,000 POT hold a muon there one time in three

    # Plain and boosted figures are those of the same requests made whole (the blocks change nothing).
    engine = Engine(Model.load(tiny_model, device="cpu"), draw_threads=1)
    try:
        plain = engine.generate(Request(found["seed"], 0, 12_000, engine.plain_source()))[0]
        source = engine.boosted_source([1.0, 1.0, 2.0, 2.0])
        boosted = engine.generate(Request(found["seed"], 0, 2_400, source))[0]
    finally:
        engine.close()
    for name, muons in (("plain", plain), ("boosted", boosted)):
        whole = joint.RegionSums()
        whole.add(muons)
        assert {key: found[name][key] for key in whole.figures()} == whole.figures(), name
    assert found["boosted"]["scales"] == {"pt": 2.0, "pz": 2.0}

    judged = {row["goal"]: row for row in json.loads((tmp_path / "evaluation.json").read_text())["verdict"]["goals"]}
    for name in JOINT_GOALS:
        assert judged[name]["result"] == NOT_MEASURED and "--bias tail" in judged[name]["shown"]


def test_a_joint_tail_reference_that_cannot_be_read_is_one_line(
    tiny_model: Path, tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--model", str(tiny_model), "--reference", str(tiny_sample), "--out", str(tmp_path)]
    assert main([*argv, "--joint-tail", str(tmp_path / "missing.parquet")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot read the joint-tail reference" in error and "missing.parquet" in error


def _judged(effective: float, ratio: float, gain: float | None, pull: float | None) -> dict[str, Any]:
    """Joint-tail figures as evaluate writes them, with the values the goals read set as given (no gain and
    no pull: plain generation made no muon there)."""
    made = 0 if gain is None else 240
    plain = {
        "rate": 3e-6 * ratio,
        "error": 2e-7,
        "n": made,
        "effective": made,
        "effective_per_muon": made / 5e7,
        "muons": 5e7,
    }
    return {
        "reference": {"rate": 3e-6, "error": 1e-7, "n": 9000, "effective": effective, "muons": 8e6},
        "judged": effective >= joint.MIN_EFFECTIVE,
        "min_effective": joint.MIN_EFFECTIVE,
        "plain": plain,
        "boosted": {**plain, "effective": 3000.0},
        "ratio": ratio,
        "ratio_error": 0.08 * ratio,
        "boosted_gain": gain,
        "boosted_pull": pull,
    }


@pytest.mark.parametrize(
    ("figures", "results"),
    [
        (_judged(4000, 1.1, 25.0, 0.5), [PASS, PASS, PASS]),
        (_judged(4000, 0.75, 25.0, 0.5), [FAIL, PASS, PASS]),
        (_judged(4000, 1.1, 6.0, 0.5), [PASS, FAIL, PASS]),
        (_judged(4000, 1.1, 25.0, -3.5), [PASS, PASS, FAIL]),
        (_judged(400, 1.1, 25.0, 0.5), [NOT_MEASURED] * 3),
        (_judged(4000, 0.0, None, None), [FAIL, NOT_MEASURED, NOT_MEASURED]),
    ],
)
def test_the_joint_tail_goals(figures: dict[str, Any], results: list[str]) -> None:
    judged = {
        row["goal"]: row["result"] for row in verdict({"joint_tail": figures}, {"description": "a test"})["goals"]
    }
    assert [judged[name] for name in JOINT_GOALS] == results
