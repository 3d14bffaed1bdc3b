"""The tiny end-to-end run: a real Pythia sample -> TF training -> ONNX export -> onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from service.contract.manifest import (
    DISCRIMINATOR,
    DISCRIMINATOR_INPUT,
    DISCRIMINATOR_OUTPUTS,
    GENERATOR,
    GENERATOR_INPUTS,
    GENERATOR_OUTPUT,
    Manifest,
    sha256_of,
)
from service.contract.muons import PHYSICAL_COLUMNS, validate, with_unit_weight
from service.samples import read_sample
from training.model.draw import draw_plain


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_manifest_checksums_and_fields(tiny_model: Path, tiny_sample: Path) -> None:
    manifest = Manifest.load(tiny_model)
    assert manifest.files == {name: sha256_of(tiny_model / name) for name in (GENERATOR, DISCRIMINATOR)}
    assert manifest.columns == list(PHYSICAL_COLUMNS)
    sample = read_sample(tiny_sample)
    [recorded] = manifest.training_sample["files"]
    assert recorded["sha256"] == sha256_of(tiny_sample) and recorded["muons"] == len(sample)
    assert manifest.training_sample["muons"] == len(sample) and manifest.training_sample["pot_source"] == "metadata"
    assert manifest.muons_per_pot == pytest.approx(float(sample.metadata["muons_per_pot"]), rel=1e-12)
    # The tiny sample is spotless, as SHiP's production: the model says so, and which FairShip flags go with it.
    assert manifest.beam_spot is not None and manifest.beam_spot.convention == "spotless"
    assert manifest.beam_spot.fairship_flags == "--SmearBeam 0.8 --PaintBeam 5"
    assert "metadata" in manifest.beam_spot.source
    correlation = np.asarray(manifest.aux_correlation)
    np.testing.assert_allclose(correlation, correlation.T)
    np.testing.assert_allclose(np.diag(correlation), 1.0)
    assert np.all(np.linalg.eigvalsh(correlation) > 0)
    assert 0.3 < manifest.mu_plus_fraction < 0.7
    assert manifest.hyperparameters["steps"] == 40
    assert 0.0 <= manifest.figures_of_merit["training_holdout"]["classifier_auc"] <= 1.0
    assert all(error <= 1e-4 for error in manifest.figures_of_merit["export_max_relative_difference"].values())
    for report in ("report_1d.png", "report_2d.png", "report_p_pt.png"):
        assert (tiny_model / report).read_bytes().startswith(b"\x89PNG")


def test_onnx_graphs_speak_physical_units(tiny_model: Path) -> None:
    manifest = Manifest.load(tiny_model)
    generator = _session(tiny_model / GENERATOR)
    assert [i.name for i in generator.get_inputs()] == list(GENERATOR_INPUTS)
    inputs = draw_plain(1000, np.asarray(manifest.aux_correlation), 0.5, manifest.noise_dim, np.random.default_rng(1))
    (muons,) = generator.run([GENERATOR_OUTPUT], inputs)
    assert muons.shape == (1000, 7) and muons.dtype == np.float32
    np.testing.assert_array_equal(muons[:, 0], -13.0 * inputs["charge"][:, 0])
    validate(with_unit_weight(muons))
    pt = np.hypot(muons[:, 4], muons[:, 5])
    assert np.all(pt >= 0) and np.median(muons[:, 6]) > 0
    discriminator = _session(tiny_model / DISCRIMINATOR)
    outputs = dict(
        zip(
            DISCRIMINATOR_OUTPUTS,
            discriminator.run(list(DISCRIMINATOR_OUTPUTS), {DISCRIMINATOR_INPUT: muons}),
            strict=True,
        )
    )
    assert outputs["p_real"].shape == (1000, 1) and np.all((outputs["p_real"] >= 0) & (outputs["p_real"] <= 1))
    assert outputs["aux"].shape == (1000, 4)
    (single,) = generator.run([GENERATOR_OUTPUT], {k: v[:1] for k, v in inputs.items()})
    np.testing.assert_allclose(single, muons[:1], rtol=1e-5, atol=1e-5)  # dynamic batch, row-independent
