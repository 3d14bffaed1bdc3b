"""The radial profile of the start point, and FairShip's beam spot painted on muons (training/evaluation/radial.py)."""

from __future__ import annotations

import numpy as np
import pytest

from service.contract.muons import column
from training.evaluation.radial import CUTS_CM, painted, radial_figure, radial_profile
from training.preparation.beam_spot import PAINTED, SPOTLESS, beam_spot_record


def _spotless(n: int, seed: int, core_scale: float = 1.0) -> np.ndarray:
    """Canonical muons in SHiP's convention: 10% on the axis, a log-uniform core below 1 mm, a halo to 20 cm."""
    rng = np.random.default_rng(seed)
    radius = np.where(rng.random(n) < 0.6, 10 ** rng.uniform(-7, -1, n) * core_scale, rng.exponential(3.0, n))
    radius[rng.random(n) < 0.1] = 0.0
    angle = rng.uniform(0, 2 * np.pi, n)
    muons = np.zeros((n, 8), np.float32)
    muons[:, column("pdg")] = 13
    muons[:, column("x")], muons[:, column("y")] = radius * np.cos(angle), radius * np.sin(angle)
    muons[:, column("z")] = -7084.5 + rng.exponential(40, n)
    muons[:, column("pz")] = 20 + rng.exponential(15, n)
    muons[:, -1] = rng.uniform(0.5, 1.5, n)
    return muons


def test_painting_puts_every_muon_on_fairships_ring() -> None:
    muons = _spotless(100000, 1)
    out = painted(muons, seed=3)
    radius = np.hypot(out[:, column("x")], out[:, column("y")])
    assert np.count_nonzero(radius == 0) == 0
    on_axis = np.hypot(muons[:, column("x")], muons[:, column("y")]) == 0
    assert np.mean(radius[on_axis]) == pytest.approx(5.06, abs=0.03)  # a 0.8 cm Gaussian on the 5 cm circle
    assert np.std(radius[on_axis]) == pytest.approx(0.8, abs=0.03)
    np.testing.assert_array_equal(out[:, column("z") :], muons[:, column("z") :])  # only x and y move
    np.testing.assert_array_equal(painted(muons, seed=3), out)  # seeded
    assert not np.array_equal(painted(muons, seed=4), out)


def test_profile_of_two_draws_of_one_source_is_within_its_band() -> None:
    profile = radial_profile(_spotless(200000, 1), _spotless(200000, 2))
    rows = {row["cut"]: row for row in profile["rows"]}
    assert list(rows) == list(CUTS_CM)
    assert all(row["judged"] and row["within"] for row in rows.values()), rows
    assert rows["r = 0"]["reference"] == pytest.approx(0.1, abs=0.005)
    for row in rows.values():  # the ratio's error covers the draw-to-draw scatter
        assert abs(row["ratio"] - 1) < 4 * row["ratio_error"] + 1e-9


def test_profile_finds_a_core_rendered_too_wide_and_an_axis_left_empty() -> None:
    generated = _spotless(200000, 1, core_scale=5.0)
    generated[np.hypot(generated[:, 1], generated[:, 2]) == 0, column("x")] = 1e-6
    rows = {row["cut"]: row for row in radial_profile(generated, _spotless(200000, 2))["rows"]}
    assert rows["r = 0"]["generated"] == 0 and not rows["r = 0"]["within"]
    assert not rows["r < 10 um"]["within"] and not rows["r < 0.1 mm"]["within"]
    assert rows["r < 5 cm"]["within"]


def test_profile_figure_draws() -> None:
    figure = radial_figure(radial_profile(_spotless(20000, 1), _spotless(20000, 2)))
    assert len(figure.axes) == 2 and figure.axes[0].get_xscale() == "log"


def test_convention_from_metadata_or_from_the_radii() -> None:
    spotless, ring = _spotless(50000, 1), painted(_spotless(50000, 2), seed=5)
    weights = spotless[:, -1]
    stated = [{"metadata": {"beam_spot": "none: FairShip's MuonBackGenerator paints it"}}]
    assert beam_spot_record(stated, ring, weights)["convention"] == SPOTLESS  # metadata wins over the radii
    fairship = [{"metadata": {}}, {"metadata": {}}]
    inferred = beam_spot_record(fairship, spotless, weights)
    assert inferred["convention"] == SPOTLESS and inferred["fairship_flags"] == "--SmearBeam 0.8 --PaintBeam 5"
    assert "inferred" in inferred["source"] and "exactly on it" in inferred["source"]
    assert beam_spot_record(fairship, ring, weights)["fairship_flags"] == "--SmearBeam 0 --PaintBeam 0"
    assert beam_spot_record(fairship, ring, weights)["convention"] == PAINTED
    generated = [{"metadata": {"beam_spot": "spotless"}}, {"metadata": {"beam_spot": "spotless"}}]  # a model's muons
    assert beam_spot_record(generated, ring, weights)["convention"] == SPOTLESS
    unknown = [{"metadata": {"beam_spot": "unknown: model.json has no beam_spot record"}}]
    assert "inferred" in beam_spot_record(unknown, spotless, weights)["source"]


def test_a_set_mixing_conventions_is_refused() -> None:
    from muongan.errors import UserError

    files = [{"metadata": {"beam_spot": "none: ..."}}, {"metadata": {"beam_spot": "Gaussian sigma 0.8 cm ..."}}]
    with pytest.raises(UserError, match="mixes spotless files and files with a beam spot"):
        beam_spot_record(files, _spotless(1000, 1), np.ones(1000))
