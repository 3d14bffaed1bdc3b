"""``muongan evaluate`` on the tiny real model, and the pieces it is made of (tails, FPD, KPD)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from muongan.cli import main
from service.contract.manifest import AUX_GROUPS, GENERATOR, Manifest, sha256_of
from service.engine.generation import Engine, Request
from service.engine.model import Model
from training.commands.evaluate import read_reference
from training.evaluation.distances import fpd, kpd
from training.evaluation.physical import all_physical
from training.evaluation.showers import with_shower_errors
from training.evaluation.tails import MIN_REFERENCE, tail_table
from training.evaluation.verdict import GOALS


def _evaluate(model: Path, reference: Path, out: Path, *extra: str) -> int:
    argv = ["evaluate", "--model", str(model), "--reference", str(reference), "--out", str(out)]
    return main([*argv, "--n", "3000", "--n-boosted", "1000", "--n-joint", "5000", *extra])


@pytest.fixture(scope="module")
def evaluated(tiny_model: Path, tiny_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the tiny model evaluated once with --update-model; (model folder, --out folder)."""
    root = tmp_path_factory.mktemp("evaluated")
    model = root / "model"
    shutil.copytree(tiny_model, model)
    out = root / "runs" / "evaluation"  # its parent does not exist yet, as data/ or runs/ in a fresh clone
    assert _evaluate(model, tiny_sample, out, "--update-model") == 0
    return model, out


def test_evaluation_reports_every_figure(evaluated: tuple[Path, Path], tiny_sample: Path) -> None:
    model, out = evaluated
    figures = json.loads((out / "evaluation.json").read_text())
    assert figures["reference"]["sha256"] == sha256_of(tiny_sample)
    assert figures["generator_sha256"] == sha256_of(model / GENERATOR)
    n = figures["n_per_side"]
    assert n == min(3000, figures["reference"]["n"])
    auc = figures["classifier_auc"]
    assert len(auc["values"]) == len(figures["seeds"]) == 3 and len(set(auc["values"])) == 3
    assert auc["mean"] == pytest.approx(np.mean(auc["values"])) and auc["std"] > 0
    assert set(figures["one_feature_auc"]) == {"r", "z", "pt", "p"}
    assert all(0 <= value <= 1 for value in [*auc["values"], *figures["one_feature_auc"].values()])
    assert set(figures["wasserstein_over_std"]) >= {"x", "y", "z", "px", "py", "pz", "pt", "p"}
    assert len(figures["tails"]) == 10
    for key in ("fpd", "kpd"):
        assert np.isfinite(figures[key]["value"]) and figures[key]["error"] >= 0
    assert figures["fpd"]["batch_sizes"][-1] == n and figures["kpd"]["batch_size"] == n
    checks = figures["physical_checks"]
    modes = {"plain", "boosted xy x2", "boosted pz x10", "boosted all x10", "custom aux 10 in every group"}
    assert modes <= set(checks)
    for mode, check in checks.items():  # the model states its whole region, so every check is made
        assert None not in check["violations"].values() and all_physical(check["violations"]), mode
    ess = figures["boosted_ess"]["groups"]
    assert set(ess) == set(AUX_GROUPS)  # the tiny model's gains mean nothing (40 steps, 3 muons above)
    for group in ess.values():
        assert group["plain_per_muon"] == pytest.approx(1e-3, abs=1 / n) and group["gain"] >= 0
    for name in ("report_1d", "report_2d", "report_p_pt", "tails", "boosted_ess"):
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_the_tail_table_faces_the_whole_reference(evaluated: tuple[Path, Path], tiny_sample: Path) -> None:
    """Beyond --n, the tail rates use every reference muon against as many of the first seed's muons."""
    model, out = evaluated
    figures = json.loads((out / "evaluation.json").read_text())
    everything, found = read_reference([str(tiny_sample)], 10**7, figures["seeds"][0])
    z_front = float(found.minimum[3])
    assert figures["tails_n_per_side"] == len(everything) == figures["reference"]["n"] > figures["n_per_side"]
    engine = Engine(Model.load(model, device="cpu"), draw_threads=1)
    try:
        generated, _ = engine.generate(Request(figures["seeds"][0], 0, len(everything), engine.plain_source()))
    finally:
        engine.close()
    rows, missing = with_shower_errors(tail_table(generated, everything, z_front), [tiny_sample], z_front)
    assert missing is None and figures["tail_shower_errors"].startswith("taken over")
    assert json.loads(json.dumps(rows)) == figures["tails"]
    assert all(row["reference"]["shower_error"] >= 0 for row in figures["tails"])


def test_shower_errors_need_the_whole_reference(tiny_model: Path, tiny_sample: Path, tmp_path: Path) -> None:
    """A tail table on part of the reference keeps its Poisson errors and says why."""
    assert _evaluate(tiny_model, tiny_sample, tmp_path, "--n", "1000", "--n-tails", "2000", "--seeds", "1") == 0
    figures = json.loads((tmp_path / "evaluation.json").read_text())
    assert figures["tail_shower_errors"].startswith("not taken: the tail table uses 2,000 of")
    assert all("shower_error" not in row["reference"] for row in figures["tails"])


def test_the_verdict_is_written_and_recorded_in_the_model(evaluated: tuple[Path, Path]) -> None:
    """evaluate judges the figures against the project's goals; --update-model makes it the model's verdict."""
    model, out = evaluated
    figures = json.loads((out / "evaluation.json").read_text())
    judged = figures["verdict"]
    assert [row["goal"] for row in judged["goals"]] == [goal.name for goal in GOALS]
    assert judged["goals"][0]["value"] == figures["classifier_auc"]["mean"]
    assert judged["source"]["reference"]["sha256"] == figures["reference"]["sha256"]
    assert judged["overall"] in ("PASS", "FAIL", "INCOMPLETE")
    assert Manifest.load(model).figures_of_merit["verdict"] == judged


def test_the_model_folder_changes_only_with_update_model(
    evaluated: tuple[Path, Path], tiny_model: Path, tiny_sample: Path, tmp_path: Path
) -> None:
    model, out = evaluated
    assert Manifest.load(model).figures_of_merit["evaluation"] == json.loads((out / "evaluation.json").read_text())
    assert Manifest.load(model).files == Manifest.load(tiny_model).files
    before = {path.name: path.read_bytes() for path in tiny_model.iterdir()}
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    assert _evaluate(copy, tiny_sample, tmp_path / "out", "--seeds", "1") == 0
    assert {path.name: path.read_bytes() for path in copy.iterdir()} == before
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["classifier_auc"]["std"] is None


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reference", "{tmp}/missing.parquet", "cannot read the reference"),
        ("--model", "{tmp}", "no model.json"),
        ("--n", "10", "--n must be at least"),
        ("--seeds", "0", "--seeds must be at least 1"),
        ("--n-tails", "5000", "--n-tails must be at least --n"),
        ("--out", "{model}/model.json", "is not a folder"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    tiny_model: Path,
    tiny_sample: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    message: str,
) -> None:
    options = {"--model": str(tiny_model), "--reference": str(tiny_sample), "--out": str(tmp_path / "out")}
    options[option] = value.format(tmp=tmp_path, model=tiny_model)
    assert main(["evaluate", *[item for pair in options.items() for item in pair]]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def _muons(n: int, rng: np.random.Generator, pt_scale: float = 1.0, weights: np.ndarray | None = None) -> np.ndarray:
    muons = np.column_stack(
        [
            rng.choice([-13.0, 13.0], n),
            rng.normal(0, 2, (2, n)).T,
            -7084.5 + rng.exponential(30, n),
            pt_scale * rng.laplace(0, 0.4, (2, n)).T,
            10 + rng.exponential(20, n),
            np.ones(n) if weights is None else weights,
        ]
    )
    return muons.astype(np.float32)


def test_tail_rates_and_their_poisson_errors() -> None:
    rng = np.random.default_rng(0)
    reference = _muons(400_000, rng)
    same = tail_table(reference, reference, z_front=-7084.5)
    for row in same:
        if row["reference"]["n"]:
            assert row["ratio"] == pytest.approx(1.0)
            n = row["reference"]["n"]
            assert row["reference"]["error"] == pytest.approx(np.sqrt(n) / len(reference))
            assert row["ratio_error"] == pytest.approx(np.sqrt(2 / n))
    assert [row["enough"] for row in same[:2]] == [True, row["reference"]["n"] >= MIN_REFERENCE]
    wider = tail_table(_muons(400_000, rng, pt_scale=1.2), reference, z_front=-7084.5)
    assert wider[0]["cut"].startswith("pt > ") and wider[0]["ratio"] > 2
    assert abs(wider[2]["ratio"] - 1) < 3 * wider[2]["ratio_error"]  # |p| is untouched


def test_fpd_and_kpd_are_zero_for_the_same_distribution_and_honour_weights() -> None:
    """Batches smaller than the paper's (same recipe) keep the test fast."""
    rng = np.random.default_rng(1)
    n = 20_000
    generated = rng.normal(0.3, 1.0, (n, 3))
    same = rng.normal(0.3, 1.0, (n, 3))
    # Exponential tilting: N(0, 1) weighted by exp(0.3 x - 0.045) is N(0.3, 1) in every column.
    plain = rng.normal(0.0, 1.0, (n, 3))
    tilted = np.exp(0.3 * plain.sum(axis=1) - 3 * 0.045)
    ones = np.ones(n)
    distances = {
        "fpd": lambda x, w: fpd(x, w, generated, ones, 0, batch_sizes=(4_000, 10_000)),
        "kpd": lambda x, w: kpd(x, w, generated, ones, 0, batch=2_000),
    }
    for name, distance in distances.items():
        null, weighted, unweighted = distance(same, ones), distance(plain, tilted), distance(plain, ones)
        assert null["value"] < 3 * null["error"] + 1e-4, (name, null)
        assert weighted["value"] < 3 * weighted["error"] + 1e-4, (name, weighted)
        assert unweighted["value"] > 10 * (null["value"] + null["error"]), (name, unweighted)
