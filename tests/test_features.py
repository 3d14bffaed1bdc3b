"""Feature transforms: exact round trips, the primary vertex, and canonical() = forward(inverse())."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from service.contract.muons import PHYSICAL_COLUMNS
from training.features import N_FEATURES, canonical, to_features, to_physical
from training.scaling import Scaling

P_MAX = 400.0  # GeV/c, the beam momentum


def _muons(n: int, seed: int) -> np.ndarray:
    """Synthetic physical muons spanning the ranges of the reference source, with some at x = y = 0."""
    rng = np.random.default_rng(seed)
    muons = np.column_stack(
        [
            rng.choice([-13.0, 13.0], n),
            rng.normal(0, 2, n),
            rng.normal(0, 2, n),
            -7084.5 + rng.exponential(40, n),
            rng.laplace(0, 0.4, n),
            rng.laplace(0, 0.4, n),
            10 + rng.exponential(15, n),
        ]
    ).astype(np.float32)
    muons[: n // 10, 1:3] = 0.0  # primary vertex
    muons[n // 10 : n // 5, 4:6] = 0.0  # pT = 0
    return muons


@pytest.fixture(scope="module")
def scaling() -> Scaling:
    muons = _muons(5000, 0)
    return Scaling.fit(muons, np.random.default_rng(1).uniform(0.5, 2.0, len(muons)), P_MAX)


def test_scaled_features_are_standardised(scaling: Scaling) -> None:
    muons = _muons(20000, 2)
    features = to_features(tf.constant(muons), scaling).numpy()
    assert features.shape == (len(muons), N_FEATURES)
    for i in (1, 4, 5, 8):  # r, z, pt, pz
        assert abs(features[:, i].mean()) < 0.1 and 0.8 < features[:, i].std() < 1.2
    assert np.all(np.abs(features) < 20)  # compact: no column spans orders of magnitude


def test_round_trip_is_exact(scaling: Scaling) -> None:
    muons = _muons(20000, 3)
    back = to_physical(to_features(tf.constant(muons), scaling), scaling).numpy()
    np.testing.assert_array_equal(back[:, 0], muons[:, 0])
    scale = np.abs(muons).max(axis=0)
    for i, name in enumerate(PHYSICAL_COLUMNS):
        np.testing.assert_allclose(back[:, i], muons[:, i], rtol=1e-5, atol=2e-6 * scale[i], err_msg=name)


def test_primary_vertex_and_zero_pt_survive_exactly(scaling: Scaling) -> None:
    muons = _muons(1000, 4)
    back = to_physical(to_features(tf.constant(muons), scaling), scaling).numpy()
    np.testing.assert_array_equal(back[:100, 1:3], 0.0)
    np.testing.assert_array_equal(back[100:200, 4:6], 0.0)


def test_inverse_then_forward_is_exact_on_features(scaling: Scaling) -> None:
    features = to_features(tf.constant(_muons(5000, 5)), scaling)
    again = to_features(to_physical(features, scaling), scaling).numpy()
    np.testing.assert_allclose(again, features.numpy(), rtol=1e-4, atol=1e-4)


def test_canonical_is_the_same_physical_muon(scaling: Scaling) -> None:
    """Raw generator output anywhere in R^9: canonical() lands on the image of to_features of the same muon.

    Compared in physical units, since near the z edge float32 z (ulp 5e-4 cm at -7085 cm) limits how
    well the log-scaled feature can be reproduced.
    """
    rng = np.random.default_rng(6)
    raw = rng.normal(0, 2, (5000, N_FEATURES)).astype(np.float32)
    raw[:, 0] = rng.choice([-1.0, 1.0], len(raw))
    physical = to_physical(tf.constant(raw), scaling).numpy()
    projected = canonical(tf.constant(raw), scaling)
    again = to_physical(projected, scaling).numpy()
    np.testing.assert_allclose(again, physical, rtol=1e-5, atol=1e-5 * np.abs(physical).max())
    np.testing.assert_allclose(
        projected.numpy(), to_features(tf.constant(physical), scaling).numpy(), rtol=1e-3, atol=3e-2
    )
    np.testing.assert_array_equal(physical[:, 0], -13.0 * raw[:, 0])
    assert np.all(physical[:, 3] > scaling.z_low) and np.all(physical[:, 6] >= 0)
    momentum = np.sqrt(np.sum(physical[:, 4:7].astype(np.float64) ** 2, axis=1))
    assert np.all(momentum > scaling.p_low * (1 - 1e-6)) and np.all(momentum <= P_MAX * (1 + 1e-6))


def test_no_generator_output_is_faster_than_the_beam(scaling: Scaling) -> None:
    """However far out the raw |p| feature goes (exp would overflow float32 here), |p| stays <= p_max."""
    raw = np.zeros((5, N_FEATURES), dtype=np.float32)
    raw[:, [0, 2, 6]] = 1.0  # charge, cos phi, cos theta
    raw[:, 8] = [-1e4, 0.0, 10.0, 100.0, 1e4]
    momentum = np.linalg.norm(to_physical(tf.constant(raw), scaling).numpy()[:, 4:7], axis=1)
    assert np.all(np.isfinite(momentum)) and np.all(np.diff(momentum) >= 0)
    assert momentum[0] == pytest.approx(scaling.p_low, rel=1e-6) and momentum[-1] == pytest.approx(P_MAX, rel=1e-6)


def test_a_sample_reaching_the_beam_momentum_is_refused() -> None:
    muons = _muons(100, 7)
    muons[17, 6] = P_MAX
    with pytest.raises(ValueError, match="muon 17 has"):
        Scaling.fit(muons, np.ones(len(muons)), P_MAX)


def test_scaling_serialises(scaling: Scaling) -> None:
    assert Scaling.from_dict(scaling.to_dict()) == scaling
