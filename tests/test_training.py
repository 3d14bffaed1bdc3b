"""Training pieces: config files, TF vs onnxruntime at export, refusal of a mismatching export, resume,
figures of merit, and every knob of the hyper-parameter search (``muongan evaluate``: test_evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG

from muongan.cli import main
from muongan.errors import UserError
from service.contract.manifest import Manifest
from service.contract.muons import PHYSICAL_COLUMNS, UNITS
from training.config import TrainConfig
from training.evaluation.fom import figures_of_merit
from training.evaluation.physical import all_physical, violations
from training.loop.gan import PhysicalDiscriminator, PhysicalGenerator, Trainer, replaces_best, tail_weights
from training.model import networks
from training.model.draw import draw_plain
from training.model.export import ExportMismatch, export_model, run_both, to_onnx
from training.parameterisation.scaling import Scaling
from training.preparation.batches import GAN
from training.preparation.dataset import prepare

_SCALING = Scaling(
    r_max=20.0,
    r_knots=[0.0, 0.5, 1.0, 4.0],
    r_scores=[-1.5, -1.0, 0.5, 3.0],
    z_low=-7085.0,
    z_high=-6800.0,
    z_mean=-2.0,
    z_std=1.0,
    sin_theta_max=0.3,
    pt_scale=0.5,
    pt_mean=1.0,
    pt_std=0.6,
    p_edge_z=[-7085.0, -7000.0, -6800.0],
    p_edge=[19.0, 9.9, 9.9],
    p_low=9.9,
    p_high=400.0,
    p_mean=0.2,
    p_std=1.2,
)
_CONFIG = TrainConfig(**TINY_CONFIG)
_AUX_RANGE = np.array([[0.0] * 4, [5.0] * 4])


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
    with pytest.raises(UserError, match="unknown key 'bacth_size': did you mean batch_size"):
        TrainConfig.load(path)


def test_tensorflow_and_onnxruntime_agree() -> None:
    generator = PhysicalGenerator(networks.generator(_CONFIG), _SCALING, _CONFIG.noise_dim, _AUX_RANGE).function
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
    signature = PhysicalGenerator(model, _SCALING, _CONFIG.noise_dim, _AUX_RANGE).function.input_signature

    @tf.function(input_signature=signature)
    def noisy(noise: tf.Tensor, aux: tf.Tensor, charge: tf.Tensor) -> dict[str, tf.Tensor]:
        muons = PhysicalGenerator(model, _SCALING, _CONFIG.noise_dim, _AUX_RANGE).function(noise, aux, charge)["muons"]
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
    calibration = manifest.hyperparameters["marginal_calibration"]
    assert list(calibration["knots"]) == manifest.hyperparameters["calibrated_columns"] == ["z"]
    tolerance, chosen = manifest.hyperparameters["selection_tolerance"], None
    for i, figures in enumerate(history):
        if figures["classifier_auc"] <= min(f["classifier_auc"] for f in history[: i + 1]) + tolerance:
            chosen = figures["step"]
    assert manifest.figures_of_merit["training_holdout"]["step"] == chosen
    assert manifest.figures_of_merit["training_holdout_calibrated"]["step"] == chosen


def test_a_resumed_run_takes_a_new_calibration_and_refuses_other_changes(
    tmp_path: Path, tiny_sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {**TINY_CONFIG, "steps": 10, "eval_every": 10, "checkpoint_every": 10}
    configs = {
        "first": base,
        "recalibrated": {**base, "calibrated_columns": ["z", "p"]},
        "wider": {**base, "batch_size": 64},
    }
    for name, values in configs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(values))
    argv = ["train", "--sample", str(tiny_sample), "--out", str(tmp_path / "m"), "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--config", str(tmp_path / "first.json"), "--no-report"]) == 0
    capsys.readouterr()
    assert main([*argv, "--config", str(tmp_path / "wider.json"), "--resume", "--no-report"]) == 2
    assert "--config changes batch_size" in capsys.readouterr().err
    assert main([*argv, "--config", str(tmp_path / "recalibrated.json"), "--resume", "--no-report"]) == 0
    assert list(Manifest.load(tmp_path / "m").hyperparameters["marginal_calibration"]["knots"]) == ["z", "p"]
    assert main([*argv, "--resume", "--no-report"]) == 0  # no --config: the saved one, as last changed
    assert Manifest.load(tmp_path / "m").hyperparameters["calibrated_columns"] == ["z", "p"]


def test_the_latest_evaluation_within_noise_of_the_lowest_auc_is_kept() -> None:
    assert replaces_best(0.530, lowest=0.5276, tolerance=0.003)  # within noise: the later weights win
    assert not replaces_best(0.531, lowest=0.5276, tolerance=0.003)
    assert replaces_best(0.52, lowest=0.52, tolerance=0.0)  # a new minimum always qualifies
    assert not replaces_best(0.5201, lowest=0.52, tolerance=0.0)  # tolerance 0: the lowest AUC alone


def test_tail_weights_turn_plain_aux_into_widened_aux() -> None:
    """Weighted by tail_weights(s), half-normal aux have the second moment s^2 of a marginal widened by s."""
    aux = np.abs(np.random.default_rng(2).normal(size=(1_000_000, 4))).astype(np.float32)
    np.testing.assert_array_equal(tail_weights(tf.constant(aux[:5]), 1.0).numpy(), 1.0)
    weights = tail_weights(tf.constant(aux), 1.2).numpy()
    assert weights.mean() == pytest.approx(1.0, rel=1e-4)
    assert np.average(aux[:, 0] ** 2, weights=weights) == pytest.approx(1.2**2, rel=0.02)  # 8 seeds: within 0.6%
    order = np.argsort(np.sum(aux**2, axis=1))
    assert np.all(np.diff(weights[order]) >= 0)


@pytest.mark.parametrize(
    "knob",
    [
        {"gradient_penalty": 10.0},
        {"tail_scale": 1.5},
        {"generator_hidden": [16, 16, 16], "discriminator_hidden": [64]},
        {"noise_dim": 3},
        {"batch_size": 32, "discriminator_steps": 2},
    ],
)
def test_every_search_knob_trains(knob: dict[str, object], tiny_sample: Path, tmp_path: Path) -> None:
    config = TrainConfig(**{**TINY_CONFIG, "aux_head_steps": 10, **knob})
    trainer = Trainer(config, prepare([tiny_sample], config, tmp_path, progress=False), tmp_path)
    trainer.pretrain_aux_heads()
    per_step = 2 * config.discriminator_steps + 1
    steps = trainer.batches.ahead(GAN, 0, 3, per_step)
    losses = [{k: float(v) for k, v in trainer._train_step(rows).items()} for rows in steps]
    assert all(np.isfinite(value) for step in losses for value in step.values())
    assert all((step["r1"] > 0) == (config.gradient_penalty > 0) for step in losses)
    assert trainer.generator.input_shape[1] == config.noise_dim + 5
    widths = [layer.units for layer in trainer.generator.layers if hasattr(layer, "units")]
    assert widths == [*config.generator_hidden, 8]
    assert all_physical(violations(trainer.generate(500, seed=1), trainer.data.scaling.to_dict()))


def test_the_search_configs_are_valid() -> None:
    """Every config of the hyper-parameter search (training/README.md) loads: a typo would waste a 150-minute run."""
    configs = sorted((Path(__file__).parents[1] / "training" / "search").glob("*.json"))
    assert len(configs) >= 5
    for path in configs:
        TrainConfig.load(path)
