"""Training pieces: config files, TF vs onnxruntime at export, refusal of a mismatching export, resume,
figures of merit, and ``muongan evaluate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydantic
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG

from muongan.cli import main
from service.manifest import DISCRIMINATOR, GENERATOR, Manifest, sha256_of
from service.muons import PHYSICAL_COLUMNS, UNITS
from training import networks
from training.config import TrainConfig
from training.draw import draw_plain
from training.export import ExportMismatch, export_model, run_both, to_onnx
from training.fom import figures_of_merit
from training.gan import PhysicalDiscriminator, PhysicalGenerator, replaces_best
from training.scaling import Scaling

_SCALING = Scaling(
    r_mean=1.0,
    r_std=0.5,
    z_low=-7085.0,
    z_scale=20.0,
    z_mean=0.0,
    z_std=1.0,
    pt_scale=0.5,
    pt_mean=1.0,
    pt_std=0.6,
    p_low=9.9,
    p_high=400.0,
    p_mean=0.2,
    p_std=1.2,
)
_CONFIG = TrainConfig(**TINY_CONFIG)


def _fields() -> dict[str, object]:
    return {
        "name": "t",
        "columns": list(PHYSICAL_COLUMNS),
        "units": {name: UNITS[name] for name in PHYSICAL_COLUMNS},
        "noise_dim": _CONFIG.noise_dim,
        "aux_correlation": np.eye(4).tolist(),
        "mu_plus_fraction": 0.5,
        "muons_per_pot": 1e-3,
    }


def test_config_round_trips_and_rejects_typos(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    _CONFIG.save(path)
    assert TrainConfig.load(path) == _CONFIG
    path.write_text(json.dumps({"generator_lr": 1e-3, "bacth_size": 4}))
    with pytest.raises(pydantic.ValidationError, match="bacth_size"):
        TrainConfig.load(path)


def test_tensorflow_and_onnxruntime_agree() -> None:
    generator = PhysicalGenerator(networks.generator(_CONFIG), _SCALING, _CONFIG.noise_dim).function
    inputs = draw_plain(2000, np.eye(4), 0.5, _CONFIG.noise_dim, np.random.default_rng(0))
    assert run_both(to_onnx(generator), generator, inputs) <= 1e-5
    discriminator = PhysicalDiscriminator(
        networks.discriminator(_CONFIG), networks.aux_head(_CONFIG), _SCALING
    ).function
    muons = generator(**inputs)["muons"].numpy()
    assert run_both(to_onnx(discriminator), discriminator, {"muons": muons}) <= 1e-5


def test_export_refuses_when_onnx_differs(tmp_path: Path) -> None:
    """A graph with a random op: ONNX RandomNormal draws another stream, so the outputs disagree."""
    model = networks.generator(_CONFIG)
    signature = PhysicalGenerator(model, _SCALING, _CONFIG.noise_dim).function.input_signature

    @tf.function(input_signature=signature)
    def noisy(noise: tf.Tensor, aux: tf.Tensor, charge: tf.Tensor) -> dict[str, tf.Tensor]:
        muons = PhysicalGenerator(model, _SCALING, _CONFIG.noise_dim).function(noise, aux, charge)["muons"]
        return {"muons": muons + tf.random.normal(tf.shape(muons))}

    discriminator = PhysicalDiscriminator(networks.discriminator(_CONFIG), networks.aux_head(_CONFIG), _SCALING)
    with pytest.raises(ExportMismatch, match=r"generator\.onnx"):
        export_model(tmp_path / "model", noisy, discriminator.function, _fields())
    assert not (tmp_path / "model").exists()


def test_figures_of_merit_tell_same_from_different() -> None:
    rng = np.random.default_rng(0)

    def muons(n: int, pz_scale: float) -> np.ndarray:
        physical = np.column_stack(
            [rng.choice([-13.0, 13.0], n), *rng.normal(0, 1, (5, n)), 10 + rng.exponential(pz_scale, n)]
        )
        return np.column_stack([physical, rng.uniform(0.5, 1.5, n)]).astype(np.float32)

    reference = muons(8000, 20.0)
    same = figures_of_merit(muons(8000, 20.0), reference)
    different = figures_of_merit(muons(8000, 40.0), reference)
    assert abs(same["classifier_auc"] - 0.5) < 0.03
    assert different["classifier_auc"] > 0.6
    assert different["wasserstein_over_std"]["pz"] > 5 * same["wasserstein_over_std"]["pz"]
    assert different["tail_rates"]["p_above_100"]["ratio"] > 2


def test_resume_continues_from_the_latest_checkpoint(
    tmp_path: Path, tiny_sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "steps": 20, "eval_every": 10, "checkpoint_every": 10}))
    argv = ["train", "--sample", str(tiny_sample), "--out", str(tmp_path / "m"), "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--config", str(config), "--no-report"]) == 0
    assert main([*argv, "--config", str(config)]) == 2
    assert "previous run" in capsys.readouterr().err
    prepared = tmp_path / "w" / "prepared" / "rows.npy"
    written = prepared.stat().st_mtime_ns
    assert main([*argv, "--resume", "--steps", "30", "--no-report"]) == 0
    assert prepared.stat().st_mtime_ns == written  # the resumed run reuses features and aux as they are
    history = [json.loads(line) for line in (tmp_path / "w" / "history.jsonl").read_text().splitlines()]
    assert [figures["step"] for figures in history] == [10, 20, 30]
    manifest = Manifest.load(tmp_path / "m")
    assert manifest.hyperparameters["steps"] == 30 and manifest.hyperparameters["eval_every"] == 10
    tolerance, chosen = manifest.hyperparameters["selection_tolerance"], None
    for i, figures in enumerate(history):
        if figures["classifier_auc"] <= min(f["classifier_auc"] for f in history[: i + 1]) + tolerance:
            chosen = figures["step"]
    assert manifest.figures_of_merit["training_holdout"]["step"] == chosen


def test_the_latest_evaluation_within_noise_of_the_lowest_auc_is_kept() -> None:
    assert replaces_best(0.530, lowest=0.5276, tolerance=0.003)  # within noise: the later weights win
    assert not replaces_best(0.531, lowest=0.5276, tolerance=0.003)
    assert replaces_best(0.52, lowest=0.52, tolerance=0.0)  # a new minimum always qualifies
    assert not replaces_best(0.5201, lowest=0.52, tolerance=0.0)  # tolerance 0: the lowest AUC alone


def test_evaluate_records_figures_and_keeps_checksums(
    tiny_model: Path, tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)  # the shared fixture stays as trained
    before = {name: sha256_of(model / name) for name in (GENERATOR, DISCRIMINATOR)}
    (model / "report_1d.png").unlink()
    assert main(["evaluate", "--model", str(model), "--reference", str(tiny_sample), "--n", "3000"]) == 0
    printed = json.loads(capsys.readouterr().out)
    evaluation = Manifest.load(model).figures_of_merit["evaluation"]
    assert printed == evaluation
    assert evaluation["reference"]["sha256"] == sha256_of(tiny_sample)
    assert evaluation["n_generated"] == 3000 and 0.0 <= evaluation["classifier_auc"] <= 1.0
    assert set(evaluation["tail_rates"]) == {"pt_above_3", "p_above_100"}
    assert Manifest.load(model).files == before == {name: sha256_of(model / name) for name in before}
    assert (model / "report_1d.png").read_bytes().startswith(b"\x89PNG")
