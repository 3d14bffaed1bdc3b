"""Write a model folder (DESIGN section 1): two ONNX graphs in physical units plus ``model.json``.

The ONNX files are checked before anything is written: the same inputs go through TensorFlow and
onnxruntime, and the export is refused if any output column differs by more than
:data:`RELATIVE_TOLERANCE` relative to that column's largest magnitude.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from service.contract.manifest import (
    DISCRIMINATOR,
    DISCRIMINATOR_INPUT,
    GENERATOR,
    GENERATOR_INPUTS,
    GENERATOR_OUTPUT,
    Manifest,
    sha256_of,
)
from training.model.draw import draw_plain

OPSET = 17
RELATIVE_TOLERANCE = 1e-4
_CHECK_ROWS = 4096


class ExportMismatch(RuntimeError):
    """TensorFlow and onnxruntime disagree: the model folder is not written."""


def to_onnx(function: Any) -> onnx.ModelProto:
    """Convert a ``tf.function`` with a named input signature; opset 17, dynamic batch."""
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=OPSET)
    return proto


def max_relative_difference(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> float:
    """Largest ``|a - b| / max|a|`` over every output column (columns span very different scales)."""
    worst = 0.0
    for name, reference in expected.items():
        scale = np.maximum(np.abs(reference).max(axis=0), np.finfo(np.float32).tiny)
        worst = max(worst, float((np.abs(actual[name] - reference).max(axis=0) / scale).max()))
    return worst


def run_both(proto: onnx.ModelProto, function: Any, inputs: dict[str, np.ndarray]) -> float:
    """Run ``inputs`` through TensorFlow and onnxruntime; the largest relative difference."""
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    ort_out = dict(zip(names, session.run(names, inputs), strict=True))
    tf_out = {name: value.numpy() for name, value in function(**inputs).items()}
    return max_relative_difference(tf_out, ort_out)


def export_model(
    folder: Path,
    generator_fn: Any,
    discriminator_fn: Any,
    manifest_fields: dict[str, Any],
    seed: int = 0,
) -> Manifest:
    """Convert, verify, then write ``generator.onnx``, ``discriminator.onnx`` and ``model.json``."""
    generator = to_onnx(generator_fn)
    discriminator = to_onnx(discriminator_fn)
    inputs = draw_plain(
        _CHECK_ROWS,
        np.asarray(manifest_fields["aux_correlation"]),
        manifest_fields["mu_plus_fraction"],
        manifest_fields["noise_dim"],
        np.random.default_rng(seed),
    )
    assert tuple(inputs) == GENERATOR_INPUTS
    errors = {GENERATOR: run_both(generator, generator_fn, inputs)}
    muons = generator_fn(**inputs)[GENERATOR_OUTPUT].numpy()
    errors[DISCRIMINATOR] = run_both(discriminator, discriminator_fn, {DISCRIMINATOR_INPUT: muons})
    bad = {name: error for name, error in errors.items() if not error <= RELATIVE_TOLERANCE}
    if bad:
        raise ExportMismatch(f"TensorFlow vs onnxruntime differ by more than {RELATIVE_TOLERANCE}: {bad}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as staging:
        for name, proto in ((GENERATOR, generator), (DISCRIMINATOR, discriminator)):
            onnx.save(proto, Path(staging) / name)
            (Path(staging) / name).replace(folder / name)
    files = {name: sha256_of(folder / name) for name in (GENERATOR, DISCRIMINATOR)}
    figures = {**manifest_fields.get("figures_of_merit", {}), "export_max_relative_difference": errors}
    manifest = Manifest(**{**manifest_fields, "files": files, "figures_of_merit": figures})
    manifest.save(folder)
    return manifest


def library_versions() -> dict[str, str]:
    import importlib.metadata

    import keras
    import sklearn

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "muongan": importlib.metadata.version("muongan"),
    }
