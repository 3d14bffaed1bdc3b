"""The marginal calibration (training.model.calibration): quantiles land on the training sample's, monotone, end
slopes continued, other columns untouched; and fitted on a real trainer, it brings the exported muons' z
distribution onto the training sample's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG
from scipy.special import ndtr
from scipy.stats import ks_2samp

from training.config import TrainConfig
from training.loop.gan import Trainer
from training.model.calibration import CALIBRATABLE, Calibration, calibrate
from training.parameterisation.features import FEATURES, to_features
from training.parameterisation.scaling import NORMAL_SCORES
from training.preparation.dataset import prepare

_Z, _P = FEATURES.index("z"), FEATURES.index("p")


def _samples(n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Generated features normal in every column; training features whose z is skewed with a long upper tail."""
    rng = np.random.default_rng(3)
    generated = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    training = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    training[:, _Z] = rng.gamma(2.0, 1.0, n) - 2.0
    return generated, training


def _apply(features: np.ndarray, calibration: Calibration) -> np.ndarray:
    result: np.ndarray = calibrate(tf.constant(features), calibration).numpy()
    return result


def test_calibrated_quantiles_are_the_training_samples() -> None:
    generated, training = _samples()
    calibration = Calibration.fit(generated, training, ["z"])
    calibrated = _apply(generated, calibration)
    levels = ndtr(NORMAL_SCORES)
    inner = (levels > 1e-3) & (levels < 1 - 1e-3)  # where 2e5 muons pin a quantile well
    np.testing.assert_allclose(
        np.quantile(calibrated[:, _Z], levels[inner]), np.quantile(training[:, _Z], levels[inner]), atol=0.02
    )
    assert ks_2samp(calibrated[:, _Z], training[:, _Z]).statistic < 0.01
    assert ks_2samp(generated[:, _Z], training[:, _Z]).statistic > 0.05
    untouched = [i for i in range(len(FEATURES)) if i != _Z]
    np.testing.assert_array_equal(calibrated[:, untouched], generated[:, untouched])


def test_an_atom_at_the_floor_keeps_its_share() -> None:
    """r with 12.4% of the muons exactly on the axis (at the feature's floor), between the levels -1.2 and -1.0 of
    the normal scores: the calibrated generator puts exactly that share on the floor, and none below it."""
    generated, training = _samples()
    r = FEATURES.index("r")
    floor = -1.155
    training[:, r] = np.maximum(training[:, r], floor)
    calibrated = _apply(generated, Calibration.fit(generated, training, ["r"]))[:, r]
    share = float(np.mean(training[:, r] == floor))
    assert 0.12 < share < 0.13
    assert np.mean(calibrated == np.float32(floor)) == pytest.approx(share, abs=2e-3)
    assert calibrated.min() == np.float32(floor)


@pytest.mark.parametrize("refined", [True, False])
def test_scores_where_the_feature_changes_shape_become_levels(refined: bool) -> None:
    """A generator whose r feature wiggles (by up to 0.05) inside one interval of the plain levels,
    [-1.0, -0.8], where r's own map has more knots: with their scores as levels, its quantiles land on the
    training sample's in there; with the plain levels alone, the map is linear across the interval and does not."""
    rng = np.random.default_rng(4)
    training = rng.normal(size=(400_000, len(FEATURES))).astype(np.float32)
    generated = training.copy()
    r = FEATURES.index("r")
    fine = np.linspace(-1.0, -0.8, 17)
    generated[:, r] = np.where(
        np.abs(training[:, r] + 0.9) < 0.1,
        training[:, r] - 0.05 * np.sin(np.pi * (training[:, r] + 1.0) / 0.2),
        training[:, r],
    )
    calibration = Calibration.fit(generated, training, ["r"], {"r": fine.tolist()} if refined else None)
    calibrated = _apply(generated, calibration)[:, r]
    inside = ndtr(fine[1:-1])
    off = np.abs(np.quantile(calibrated, inside) - np.quantile(training[:, r], inside)).max()
    assert (off < 0.005) == refined, off


def test_the_map_is_monotone_and_continues_its_end_slopes() -> None:
    generated, training = _samples()
    calibration = Calibration.fit(generated, training, ["z", "p"])
    knots, values = np.array(calibration.knots["z"]), np.array(calibration.values["z"])
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(values) >= 0)
    assert np.array_equal(knots, knots.astype(np.float32))  # exact in the graph
    x = np.zeros((7, len(FEATURES)), np.float32)
    x[:, _Z] = [knots[0] - 3, knots[0] - 1, knots[0], knots[20], knots[-1], knots[-1] + 1, knots[-1] + 3]
    mapped = _apply(x, calibration)[:, _Z]
    low, high = (values[1] - values[0]) / (knots[1] - knots[0]), (values[-1] - values[-2]) / (knots[-1] - knots[-2])
    expected = [values[0] - 3 * low, values[0] - low, values[0], values[20], values[-1], values[-1] + high]
    np.testing.assert_allclose(mapped[:6], expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(mapped) > 0)
    line = np.linspace(-8, 8, 10_001, dtype=np.float32)
    dense = np.zeros((len(line), len(FEATURES)), np.float32)
    dense[:, _P] = line
    assert np.all(np.diff(_apply(dense, calibration)[:, _P]) >= 0)


def test_a_constant_column_and_no_columns_keep_the_identity() -> None:
    generated, training = _samples(10_000)
    generated[:, _Z] = 1.5
    assert Calibration.fit(generated, training, ["z"]).knots == {}
    np.testing.assert_array_equal(_apply(generated, Calibration()), generated)


def test_a_trainer_calibrated_generator_follows_the_training_z(tiny_sample: Path, tmp_path: Path) -> None:
    """A barely trained generator's z is off; through its calibration the muons' z is the training sample's."""
    config = TrainConfig(**{**TINY_CONFIG, "aux_head_steps": 10})
    trainer = Trainer(config, prepare([tiny_sample], config, tmp_path, progress=False), tmp_path)
    training = trainer.batches.draw(0, 999, 40).reshape(-1, 13)[:, _Z]  # a weighted draw of 5,120 rows
    scaling = trainer.data.scaling

    def z_features(muons: np.ndarray) -> np.ndarray:
        result: np.ndarray = to_features(tf.constant(muons[:, :7]), scaling).numpy()[:, _Z]
        return result

    before = ks_2samp(z_features(trainer.generate(20_000, seed=5)), training).statistic
    calibration = trainer.calibrate()
    after = ks_2samp(z_features(trainer.generate(20_000, seed=5)), training).statistic
    assert list(calibration.knots) == ["z"]
    assert before > 0.1
    assert after < 0.03
    assert after < before / 4


def test_every_calibratable_column_fits() -> None:
    generated, training = _samples(20_000)
    calibration = Calibration.fit(generated, training, CALIBRATABLE)
    assert tuple(calibration.knots) == CALIBRATABLE
    assert all(len(calibration.knots[c]) == len(calibration.values[c]) == len(NORMAL_SCORES) for c in CALIBRATABLE)


def test_the_config_takes_every_calibratable_column_and_no_other() -> None:
    assert TrainConfig(calibrated_columns=list(CALIBRATABLE)).calibrated_columns == list(CALIBRATABLE)
    with pytest.raises(pydantic.ValidationError, match="calibrated_columns"):
        TrainConfig(calibrated_columns=["cos_phi"])
