"""Every muon physical by construction (issue 13 goal 3), through the real exported ONNX of the tiny model:
extreme aux (1e-3 and 10 in every group, and each group alone), boosted scales up to 10, and the
in-graph clip of aux to the range the generator was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from service.contract.manifest import AUX_GROUPS, GENERATOR, GENERATOR_OUTPUT, Manifest
from service.contract.muons import with_unit_weight
from service.engine.generation import Engine, Request
from service.engine.model import Model
from training.evaluation.physical import all_physical, violations
from training.model.draw import draw_plain

EXTREME = (1e-3, 10.0)
N = 4000


@pytest.fixture(scope="module")
def generator(tiny_model: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(tiny_model / GENERATOR), providers=["CPUExecutionProvider"])


def _run(session: onnxruntime.InferenceSession, manifest: Manifest, aux: np.ndarray, seed: int = 0) -> np.ndarray:
    inputs = draw_plain(
        len(aux), np.asarray(manifest.aux_correlation), 0.5, manifest.noise_dim, np.random.default_rng(seed)
    )
    inputs["aux"] = aux.astype(np.float32)
    return with_unit_weight(session.run([GENERATOR_OUTPUT], inputs)[0])


def _aux(value: float, group: str | None) -> np.ndarray:
    """``value`` in one group (the others plain-ish at 0.7), or in every group when ``group`` is None."""
    aux = np.full((N, len(AUX_GROUPS)), 0.7)
    aux[:, [AUX_GROUPS.index(group)] if group else slice(None)] = value
    return aux


@pytest.mark.parametrize("group", [None, *AUX_GROUPS])
@pytest.mark.parametrize("value", EXTREME)
def test_extreme_aux_gives_physical_muons(
    tiny_model: Path, generator: onnxruntime.InferenceSession, value: float, group: str | None
) -> None:
    manifest = Manifest.load(tiny_model)
    region = manifest.hyperparameters["feature_scaling"]
    counts = violations(_run(generator, manifest, _aux(value, group)), region)
    assert all_physical(counts), counts
    assert region["sin_theta_max"] < 1 and region["p_high"] == manifest.hyperparameters["p_max"]


def test_aux_beyond_the_trained_range_is_clipped_in_the_graph(
    tiny_model: Path, generator: onnxruntime.InferenceSession
) -> None:
    """Aux above the largest (below the smallest) training value gives exactly the muons of that edge."""
    manifest = Manifest.load(tiny_model)
    trained = manifest.aux_range
    assert trained is not None
    low, high = (np.array([trained[g][i] for g in AUX_GROUPS]) for i in (0, 1))
    assert np.all(low >= 0) and np.all(low < 0.1) and np.all(high > 2) and np.all(high < 10)
    far = _run(generator, manifest, np.tile(high + 40.0, (N, 1)))
    np.testing.assert_array_equal(far, _run(generator, manifest, np.tile(high, (N, 1))))
    inside = _run(generator, manifest, np.tile(0.9 * high, (N, 1)))
    assert not np.array_equal(far, inside)  # the clip is at the edge, not below it
    np.testing.assert_array_equal(
        _run(generator, manifest, np.zeros((N, 4))), _run(generator, manifest, np.tile(low, (N, 1)))
    )


@pytest.mark.parametrize("scale", [[10.0, 1, 1, 1], [1, 10.0, 1, 1], [1, 1, 10.0, 1], [1, 1, 1, 10.0], [10.0] * 4])
def test_boosted_muons_from_the_service_engine_are_physical(tiny_model: Path, scale: list[float]) -> None:
    engine = Engine(Model.load(tiny_model), draw_threads=1)
    try:
        muons, prepared = engine.generate(Request(5, 0, N, engine.boosted_source(scale)))
    finally:
        engine.close()
    counts = violations(muons, engine.manifest.hyperparameters["feature_scaling"])
    assert all_physical(counts), counts
    assert prepared.effective_sample_size > 1
