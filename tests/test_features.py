"""Feature transforms: exact round trips, the primary vertex, and canonical() = forward(inverse())."""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import numpy as np
import pytest
import tensorflow as tf

from service.contract.muons import PHYSICAL_COLUMNS, with_unit_weight
from service.plots import observables
from training.evaluation.physical import all_physical, violations
from training.parameterisation.features import N_FEATURES, canonical, to_features, to_physical
from training.parameterisation.scaling import Scaling

P_MAX = 400.0  # GeV/c, the beam momentum
MARGIN = 0.1


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


def _weights(n: int) -> np.ndarray:
    return np.random.default_rng(1).uniform(0.5, 2.0, n)


@pytest.fixture(scope="module")
def scaling() -> Scaling:
    """Fitted on more muons than any test draws, so that the tests' muons lie inside its region."""
    muons = _muons(50000, 0)
    return Scaling.fit(muons, _weights(len(muons)), P_MAX, MARGIN)


def test_scaled_features_are_standardised(scaling: Scaling) -> None:
    muons = _muons(50000, 0)
    features = to_features(tf.constant(muons), scaling).numpy()
    assert features.shape == (len(muons), N_FEATURES)
    for i in (4, 5, 8):  # z, pt, p
        mean = np.average(features[:, i], weights=_weights(len(muons)))
        std = np.sqrt(np.average((features[:, i] - mean) ** 2, weights=_weights(len(muons))))
        assert abs(mean) < 1e-3 and abs(std - 1) < 1e-3
    assert np.all(np.abs(features) < 20)  # compact: no column spans orders of magnitude


def test_radius_feature_is_a_normal_score_above_its_floor(scaling: Scaling) -> None:
    """The quantile map: the weighted share of muons at or below score t is Phi(t); the axis sits on the floor."""
    muons = _muons(50000, 0)
    radius = to_features(tf.constant(muons), scaling).numpy()[:, 1]
    weights = _weights(len(muons))
    on_axis = np.hypot(muons[:, 1], muons[:, 2]) == 0
    np.testing.assert_array_equal(radius[on_axis], scaling.r_scores[0])
    assert np.all(radius[~on_axis] > scaling.r_scores[0])
    normal = NormalDist()
    assert scaling.r_scores[0] == pytest.approx(normal.inv_cdf(weights[on_axis].sum() / weights.sum()))
    for score in (-1.0, 0.0, 1.0, 2.0, 3.0):
        share = weights[radius <= score].sum() / weights.sum()
        assert share == pytest.approx(normal.cdf(score), abs=1e-3), score
    assert np.all(np.diff(scaling.r_knots) > 0) and np.all(np.diff(scaling.r_scores) > 0)


def test_radius_map_of_a_sample_on_the_axis_keeps_every_muon_there() -> None:
    """Every start point at x = y = 0 (no quantiles above the atom): r's feature is its floor, and back is 0."""
    muons = _muons(2000, 2)
    muons[:, 1:3] = 0.0
    axis = Scaling.fit(muons, _weights(len(muons)), P_MAX, MARGIN)
    features = to_features(tf.constant(muons), axis)
    np.testing.assert_array_equal(features[:, 1], axis.r_scores[0])
    np.testing.assert_array_equal(to_physical(features, axis).numpy()[:, 1:3], 0.0)


def test_radius_map_on_a_ring_reaches_into_its_hole_and_halo() -> None:
    """A painted beam (ring of 5 cm, no atom at 0): the floor lies below the lowest knot, the halo stays in reach."""
    rng = np.random.default_rng(7)
    muons = _muons(50000, 1)
    angle = rng.uniform(0, 2 * np.pi, len(muons))
    radius = 5.0 + rng.normal(0, 0.8, len(muons)) + rng.exponential(0.5, len(muons)) * (rng.random(len(muons)) < 0.05)
    muons[:, 1], muons[:, 2] = radius * np.cos(angle), radius * np.sin(angle)
    ring = Scaling.fit(muons, _weights(len(muons)), P_MAX, MARGIN)
    assert ring.r_knots[0] == 0.0 and ring.r_core * np.sinh(ring.r_knots[1]) > 1.0  # the first knot above 1 cm
    assert ring.r_scores[1] - 1.0 <= ring.r_scores[0] < ring.r_scores[1]
    features = to_features(tf.constant(muons), ring)
    assert np.max(features[:, 1]) < 6 and np.min(features[:, 1]) > ring.r_scores[0]
    back = to_physical(features, ring).numpy()
    np.testing.assert_allclose(np.hypot(back[:, 1], back[:, 2]), np.abs(radius), rtol=1e-5, atol=1e-5)


def _spotless_radii(n: int, rng: np.random.Generator) -> np.ndarray:
    """SHiP's convention: 8% exactly on the axis, a core spread log-uniformly over 1e-7 to 1e-1 cm, a halo to 20 cm."""
    radius = 10 ** rng.uniform(-7, -1, n)
    radius[rng.random(n) < 0.08] = 0.0
    halo = rng.random(n) < 0.3
    radius[halo] = rng.exponential(2.0, int(halo.sum())) + 0.1
    return radius


RADIAL_EDGES_CM = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 5.0)  # 1 um, 10 um, 0.1 mm, 1 mm, 1 cm, 5 cm


@pytest.mark.parametrize("logarithmic", [True, False])
def test_radius_map_renders_a_spotless_profile_from_normal_scores(logarithmic: bool) -> None:
    """A generator that renders r's normal score perfectly renders the radial profile: the share at r = 0 and
    below each of 1 um ... 5 cm within 2% of the sample's. Linear interpolation between the knots (``r_core``
    0, the map before SHiP's convention was trained) crowds each interval's muons towards its top: off by up to 4%."""
    rng = np.random.default_rng(11)
    muons = _muons(200000, 6)
    radius, angle = _spotless_radii(len(muons), rng), rng.uniform(0, 2 * np.pi, len(muons))
    muons[:, 1], muons[:, 2] = radius * np.cos(angle), radius * np.sin(angle)
    weights = np.ones(len(muons))
    fitted = Scaling.fit(muons, weights, P_MAX, MARGIN)
    if not logarithmic:
        fitted = _linear_radius(muons, weights)
    features = to_features(tf.constant(muons), fitted).numpy()
    features[:, 1] = rng.standard_normal(len(features))  # the perfect generator: r's feature is a normal score
    back = to_physical(tf.constant(features), fitted).numpy()
    generated = np.hypot(back[:, 1], back[:, 2])
    shares = [(np.mean(generated == 0), np.mean(radius == 0))]
    shares += [(np.mean(generated < edge), np.mean(radius < edge)) for edge in RADIAL_EDGES_CM]
    close = [abs(made / want - 1) < 0.02 for made, want in shares]
    assert all(close) == logarithmic, shares


def _layered_core_radii(n: int, rng: np.random.Generator) -> np.ndarray:
    """SHiP's spotless core as the source makes it: 12% on the axis, 8% from eta decays near 1e-8 cm, an empty
    decade around 1e-6 cm, 4% from charm flights near 1e-3 cm, the rest a halo from pion and kaon decays."""
    share = rng.random(n)
    radius = 10 ** rng.normal(-0.5, 0.5, n)
    radius[share < 0.24] = 10 ** rng.normal(-3.0, 0.3, n)[share < 0.24]
    radius[share < 0.20] = 10 ** rng.normal(-8.0, 0.3, n)[share < 0.20]
    radius[share < 0.12] = 0.0
    return radius


@pytest.mark.parametrize("refined", [True, False])
def test_radius_map_renders_a_layered_core(refined: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator that renders r's normal score perfectly renders a core of several shapes: every decade of r
    holding more than 1% of the muons within 10% of the sample's share. Knots at the plain normal scores alone
    spread the eta peak, the empty decade and the charm peak evenly in log r over one interval: off by 2x or more."""
    from training.parameterisation import scaling as module

    if not refined:
        monkeypatch.setattr(module, "MAX_KNOT_STEP", np.inf)
    rng = np.random.default_rng(12)
    muons = _muons(200000, 7)
    radius, angle = _layered_core_radii(len(muons), rng), rng.uniform(0, 2 * np.pi, len(muons))
    muons[:, 1], muons[:, 2] = radius * np.cos(angle), radius * np.sin(angle)
    fitted = Scaling.fit(muons, np.ones(len(muons)), P_MAX, MARGIN)
    features = to_features(tf.constant(muons), fitted).numpy()
    features[:, 1] = rng.standard_normal(len(features))
    back = to_physical(tf.constant(features), fitted).numpy()
    generated = np.hypot(back[:, 1], back[:, 2])
    decades = np.arange(-10.0, 3.0)
    made, want = (np.histogram(np.log10(r[r > 0]), decades)[0] / len(r) for r in (generated, radius))
    counted = want > 0.01
    close = np.abs(made[counted] / want[counted] - 1) < 0.1
    assert close.all() == refined, (made, want)


def _linear_radius(muons: np.ndarray, weights: np.ndarray) -> Scaling:
    """The same fit with the knots linear in the stretched radius (``r_core`` 0)."""
    from training.parameterisation import scaling as module

    fitted = Scaling.fit(muons, weights, P_MAX, MARGIN)
    stretched = fitted.r_max * np.arctanh(np.hypot(muons[:, 1], muons[:, 2]).astype(np.float64) / fitted.r_max)
    knots, scores = module._normal_scores(stretched, weights)
    return dataclasses.replace(fitted, r_knots=knots.tolist(), r_scores=scores.tolist(), r_core=0.0)


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
    well the log-scaled feature can be reproduced; in feature space only away from the upper edges of
    r and pT, where the bounded maps saturate and float32 cannot invert them.
    """
    rng = np.random.default_rng(6)
    raw = rng.normal(0, 2, (5000, N_FEATURES)).astype(np.float32)
    raw[:, 0] = rng.choice([-1.0, 1.0], len(raw))
    physical = to_physical(tf.constant(raw), scaling).numpy()
    projected = canonical(tf.constant(raw), scaling)
    again = to_physical(projected, scaling).numpy()
    np.testing.assert_allclose(again, physical, rtol=1e-5, atol=1e-5 * np.abs(physical).max())
    v = observables(with_unit_weight(physical))
    inner = (np.hypot(v["x"], v["y"]) < 0.99 * scaling.r_max) & (v["pt"] / v["p"] < 0.99 * scaling.sin_theta_max)
    assert inner.mean() > 0.95
    np.testing.assert_allclose(
        projected.numpy()[inner], to_features(tf.constant(physical[inner]), scaling).numpy(), rtol=1e-3, atol=3e-2
    )
    np.testing.assert_array_equal(physical[:, 0], -13.0 * raw[:, 0])
    assert all_physical(violations(with_unit_weight(physical), scaling.to_dict()))


@pytest.mark.parametrize("extreme", [-1e30, -1e4, -30.0, 30.0, 1e4, 1e30])
def test_every_raw_output_is_a_physical_muon(scaling: Scaling, extreme: float) -> None:
    """However far out a raw feature goes (exp, sinh and squares overflow float32 here), the muon stays
    inside the stated region: pz > 0, pT < |p|, p_low <= |p| <= p_max, z_low <= z <= z_high, r <= r_max."""
    rng = np.random.default_rng(8)
    raw = rng.normal(0, 1, (N_FEATURES * 50, N_FEATURES)).astype(np.float32)
    raw[:, 0] = 1.0
    for column in range(1, N_FEATURES):  # each column pushed to the extreme in its own block of rows
        raw[column * 50 : (column + 1) * 50, column] = extreme
    raw[:50, 1:] = extreme  # and all of them at once
    muons = with_unit_weight(to_physical(tf.constant(raw), scaling).numpy())
    counts = violations(muons, scaling.to_dict())
    assert all_physical(counts), counts
    momentum = observables(muons)["p"]
    if extreme > 0:  # the edges are reached, not just approached
        assert momentum[8 * 50 : 9 * 50].max() == pytest.approx(P_MAX, rel=1e-6)
        assert muons[4 * 50 : 5 * 50, 3].max() == pytest.approx(scaling.z_high, abs=1e-2)


def test_the_region_is_the_sample_plus_its_margin(scaling: Scaling) -> None:
    muons = _muons(50000, 0).astype(np.float64)
    v = observables(with_unit_weight(muons))
    assert scaling.r_max == pytest.approx((1 + MARGIN) * np.hypot(v["x"], v["y"]).max())
    assert scaling.sin_theta_max == pytest.approx((1 + MARGIN) * (v["pt"] / v["p"]).max())
    assert scaling.z_high == pytest.approx(v["z"].max() + MARGIN * (v["z"].max() - scaling.z_low))
    assert scaling.z_low < v["z"].min() and scaling.p_low < v["p"].min() and scaling.sin_theta_max < 1


def test_a_sample_reaching_the_beam_momentum_is_refused() -> None:
    muons = _muons(100, 7)
    muons[17, 6] = P_MAX
    with pytest.raises(ValueError, match="muon 17 has"):
        Scaling.fit(muons, np.ones(len(muons)), P_MAX, MARGIN)


def test_scaling_serialises(scaling: Scaling) -> None:
    assert Scaling.from_dict(scaling.to_dict()) == scaling


def test_the_momentum_edge_follows_depth() -> None:
    """A sample cut at the absorber's exit (the cut falls 1 GeV/c per 10 cm of depth here) gets an edge
    under every muon that follows the cut within a bin's fall, and generated muons pushed to the lowest
    |p| land on that edge at their own depth, not on the deepest muon's cut."""
    rng = np.random.default_rng(3)
    muons = _muons(50000, 4)
    depth = muons[:, 3].astype(np.float64) - muons[:, 3].min()
    cut = 20.0 - depth / 10.0
    muons[:, 6] = np.maximum(cut, 5.0) + rng.exponential(15, len(muons))
    scaling = Scaling.fit(muons, _weights(len(muons)), P_MAX, MARGIN)
    v = observables(with_unit_weight(muons.astype(np.float64)))
    edge = np.interp(v["z"], scaling.p_edge_z, scaling.p_edge)
    bin_fall = (scaling.p_edge_z[1] - scaling.p_edge_z[0]) / 10.0
    assert np.all(edge < v["p"])
    populated = depth < 100
    assert np.all(edge[populated] > np.maximum(cut, 5.0)[populated] - 2 * bin_fall)
    assert np.all(np.diff(scaling.p_edge) <= 0) and scaling.p_low == scaling.p_edge[-1]

    raw = to_features(tf.constant(muons[:500]), scaling).numpy()
    raw[:, 8] = -1e30
    lowest = with_unit_weight(to_physical(tf.constant(raw), scaling).numpy())
    w = observables(lowest)
    np.testing.assert_allclose(w["p"], np.interp(w["z"], scaling.p_edge_z, scaling.p_edge), rtol=1e-5)
    assert all_physical(violations(lowest, scaling.to_dict()))
