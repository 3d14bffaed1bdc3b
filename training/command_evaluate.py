"""``muongan evaluate --model DIR --reference PATH...``: figures of merit and the PNG report.

Muons are generated the way a user gets them: ``generator.onnx`` under onnxruntime, fed with plain
inputs (copula aux, charge by the mu+ fraction; DESIGN section 4) drawn from the manifest. The
figures are printed as JSON, recorded in ``model.json`` under ``figures_of_merit.evaluation`` (the
ONNX files and their checksums are untouched), and the report PNGs are rewritten.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime

from muongan.errors import UserError
from service.manifest import GENERATOR, GENERATOR_OUTPUT, Manifest
from service.muons import SampleError, with_unit_weight
from service.samples.survey import identity, subsample
from training.draw import draw_plain
from training.fom import figures_of_merit
from training.report import write_report

_CHUNK = 65536


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model folder")
    parser.add_argument(
        "--reference", nargs="+", required=True, metavar="PATH", help="held-out reference: files, folders or globs"
    )
    parser.add_argument("--n", type=int, default=200_000, help="muons per side (default 200000)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the generated inputs and the classifier")
    parser.add_argument("--no-report", action="store_true", help="skip the PNG report")


def generate_onnx(folder: Path, manifest: Manifest, n: int, seed: int) -> np.ndarray:
    """``n`` canonical muons (weight 1) from ``generator.onnx`` with plain inputs, in chunks."""
    session = onnxruntime.InferenceSession(str(folder / GENERATOR), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    correlation = np.asarray(manifest.aux_correlation)
    chunks = []
    for start in range(0, n, _CHUNK):
        inputs = draw_plain(min(_CHUNK, n - start), correlation, manifest.mu_plus_fraction, manifest.noise_dim, rng)
        chunks.append(session.run([GENERATOR_OUTPUT], inputs)[0])
    return with_unit_weight(np.concatenate(chunks))


def run(args: argparse.Namespace) -> int:
    manifest = Manifest.load(args.model)
    try:  # at most n muons of the reference set, drawn at random, in bounded memory
        reference, found = subsample(args.reference, args.n, args.seed)
    except SampleError as error:
        raise UserError(str(error)) from None
    generated = generate_onnx(args.model, manifest, args.n, args.seed)
    figures = {
        "reference": identity([f.path for f in found.files]),
        "seed": args.seed,
        **figures_of_merit(generated, reference, seed=args.seed),
    }
    updated = manifest.model_copy(update={"figures_of_merit": {**manifest.figures_of_merit, "evaluation": figures}})
    updated.save(args.model)
    if not args.no_report:
        write_report(args.model, generated, reference)
    print(json.dumps(figures, indent=2))
    return 0
