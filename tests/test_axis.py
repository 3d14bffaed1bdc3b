"""SHiP's convention in the shipped model: muons on the beam axis leave the exported graph as exact zeros of x and y,
in the share the model was judged to make, in every mode; and as +0, since files print the sign of a zero."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.contract.manifest import Manifest
from service.contract.muons import column
from service.engine.generation import Engine, LatentSource, Request
from service.engine.model import Model

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"
N = 20_000


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = Engine(Model.load(DEFAULT), draw_threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def modes(engine: Engine) -> dict[str, LatentSource]:
    seeds, _ = engine.generate(Request(3, 0, 2000, engine.plain_source()))
    return {
        "plain": engine.plain_source(),
        "boosted": engine.boosted_source([2.0, 2.0, 2.0, 2.0]),
        "custom": engine.custom_source(np.full((N, 4), 0.7)),
        "enhanced": engine.seed_source(seeds),
    }


@pytest.mark.parametrize("mode", ["plain", "boosted", "custom", "enhanced"])
def test_muons_on_the_axis_are_exact_positive_zeros(engine: Engine, modes: dict[str, LatentSource], mode: str) -> None:
    muons, _ = engine.generate(Request(11, 0, N, modes[mode]))
    x, y = muons[:, column("x")], muons[:, column("y")]
    on_axis = (x == 0) & (y == 0)
    assert np.count_nonzero(on_axis) > 100, mode  # enough zeros to read their signs (plain: about 12% of the muons)
    for name in ("x", "y", "px", "py"):
        values = muons[:, column(name)]
        assert not np.any(np.signbit(values[values == 0])), f"{mode}: {name} = -0"


def test_the_plain_share_on_the_axis_is_the_judged_one(engine: Engine) -> None:
    muons, _ = engine.generate(Request(11, 0, N, engine.plain_source()))
    on_axis = (muons[:, column("x")] == 0) & (muons[:, column("y")] == 0)
    judged = Manifest.load(DEFAULT).figures_of_merit["evaluation"]["radial_profile"]["rows"][0]
    assert judged["cut"] == "r = 0"
    assert np.mean(on_axis) == pytest.approx(judged["generated"], abs=4 * np.sqrt(0.12 * 0.88 / N))
