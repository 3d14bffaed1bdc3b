"""``muongan evaluate --model DIR --reference PATH... --out DIR``: the figures a physicist checks a model by.

Writes ``evaluation.json`` (all figures, :mod:`training.evaluation.evaluate`) and titled PNGs into ``--out``:
the 1-D, 2-D and |p|-pT comparisons, the tail table and the boosted ESS gains. The model folder is
left alone unless ``--update-model`` asks to record the figures in ``model.json``
(``figures_of_merit.evaluation``, and its verdict as ``figures_of_merit.verdict``, which ``muongan serve``
reads; the ONNX files and their checksums are untouched). The joint tail (|p| > 100 and pT > 3 GeV/c,
:mod:`training.evaluation.joint_tail`) is judged on the whole of ``--joint-tail``, a tail-biased
reference, or of ``--reference`` when none is given. The verdict against the project's goals
(:mod:`training.evaluation.verdict`) ends what it prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from muongan.errors import UserError
from service.contract.muons import SampleError, column
from service.samples import sets
from service.samples.survey import Survey, identity, subsample

MIN_N = 1000
MAX_SEED = 2**32 - 1  # scikit-learn's largest random_state


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model folder")
    parser.add_argument(
        "--reference",
        nargs="+",
        required=True,
        metavar="PATH",
        help="independent reference (new seed): files, folders or quoted globs",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for evaluation.json and the PNGs")
    parser.add_argument(
        "--n", type=int, default=1_000_000, help="muons per side (default 1e6, or all the reference has)"
    )
    parser.add_argument(
        "--n-tails",
        type=int,
        default=10_000_000,
        help="muons per side for the tail table, at least --n (default 1e7, or all the reference has)",
    )
    parser.add_argument("--seed", type=int, default=12345, help="first seed of the generated muons and classifiers")
    parser.add_argument("--seeds", type=int, default=3, help="classifier AUCs, each on its own seed (default 3)")
    parser.add_argument("--n-boosted", type=int, help="muons per boosted and extreme-aux run (default n / 4)")
    parser.add_argument(
        "--joint-tail",
        nargs="+",
        metavar="PATH",
        help="reference for |p| > 100 and pT > 3 GeV/c, read whole: a tail-biased one (default: --reference)",
    )
    parser.add_argument(
        "--n-joint",
        type=int,
        default=50_000_000,
        help="plain muons generated for the joint tail (default 5e7); the boosted request makes a fifth of that",
    )
    parser.add_argument(
        "--update-model", action="store_true", help="record the figures in model.json (figures_of_merit.evaluation)"
    )


def read_reference(paths: list[str], n: int, seed: int) -> tuple[np.ndarray, Survey]:
    """At most ``n`` reference muons ``(m, 8)`` drawn at random from the set in bounded memory, and the
    set's survey (its files, its size, its lowest z: the target front)."""
    try:
        return subsample(paths, n, seed)
    except (OSError, SampleError) as error:
        raise UserError(f"cannot read the reference: {error}") from None


def _check(args: argparse.Namespace) -> None:
    if args.n < MIN_N:
        raise UserError(f"--n must be at least {MIN_N} muons per side, got {args.n}")
    if args.n_tails < args.n:
        raise UserError(f"--n-tails must be at least --n ({args.n}), got {args.n_tails}")
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    last = MAX_SEED - args.seeds + 1  # the classifiers take seeds seed, seed + 1, ...: scikit-learn's range
    if not 0 <= args.seed <= last:
        raise UserError(f"--seed must be between 0 and {last:,} with --seeds {args.seeds}, got {args.seed}")
    if args.n_boosted is not None and args.n_boosted < MIN_N:
        raise UserError(f"--n-boosted must be at least {MIN_N}, got {args.n_boosted}")
    if args.n_joint < 5 * MIN_N:
        raise UserError(f"--n-joint must be at least {5 * MIN_N}, got {args.n_joint}")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")


def _shower_errors(
    rows: list[dict[str, Any]], files: list[Path], z_front: float, used: int, total: int
) -> tuple[list[dict[str, Any]], str]:
    """The tail table with shower-aware reference errors where they can be had, and what was done.

    They are the errors of the whole set's rates, so they are taken only when the table uses all of it;
    where a file's record of its blocks does not fit it, the evaluation goes on with Poisson errors alone
    and says why (the muons themselves were read and checked already).
    """
    from training.evaluation import with_shower_errors

    if used < total:
        return rows, f"not taken: the tail table uses {used:,} of the reference's {total:,} muons"
    try:
        rows, missing = with_shower_errors(rows, files, z_front)
    except (OSError, SampleError) as error:  # e.g. a file cut from a sample, its metadata copied: no error to take
        return rows, f"not taken: {error}"
    return rows, missing or "taken over the reference's independent blocks of protons (training/evaluation/showers.py)"


def joint_tail_files(paths: list[str]) -> list[Path]:
    try:
        return sets.expand(paths)
    except SampleError as error:
        raise UserError(f"cannot read the joint-tail reference: {error}") from None


def run(args: argparse.Namespace) -> int:
    from service.engine.generation import Engine
    from service.engine.model import Model, ModelError
    from training.evaluation import evaluate
    from training.evaluation.joint_tail import joint_tail
    from training.evaluation.plots import ess_figure, tails_figure
    from training.evaluation.radial import radial_figure
    from training.evaluation.report import save, title, write_report
    from training.evaluation.verdict import lines, verdict

    _check(args)
    joint_files = joint_tail_files(args.joint_tail) if args.joint_tail else None
    try:
        model = Model.load(args.model, device="cpu")
    except ModelError as error:
        raise UserError(str(error)) from None
    chosen, found = read_reference(args.reference, args.n_tails, args.seed)
    files = [summary.path for summary in found.files]
    reference: dict[str, Any] = {**identity(files), "n": found.muons}
    z_front = float(found.minimum[column("z")])
    n = min(len(chosen), args.n)
    if n < MIN_N:
        raise UserError(f"the reference holds {n} muons, fewer than {MIN_N}")
    if n < args.n:
        print(f"muongan evaluate: the reference holds {n:,} muons: n = {n:,} a side", file=sys.stderr)
    engine = Engine(model, draw_threads=2)
    try:
        figures, generated = evaluate(
            engine, chosen, n, args.seed, args.seeds, args.n_boosted or max(MIN_N, n // 4), z_front
        )
        try:
            figures["joint_tail"] = joint_tail(
                engine, joint_files or files, z_front, args.n_joint, args.n_joint // 5, args.seed
            )
        except (OSError, SampleError) as error:
            raise UserError(f"cannot read the joint-tail reference: {error}") from None
    finally:
        engine.close()
    figures["tails"], figures["tail_shower_errors"] = _shower_errors(
        figures["tails"], files, z_front, len(chosen), found.muons
    )
    figures = {"model": model.manifest.name, "generator_sha256": model.sha256, "reference": reference, **figures}
    source = f"muongan evaluate against {reference['path']}, {n:,} muons a side, tails on {len(chosen):,}"
    figures["verdict"] = verdict(figures, {"command": "evaluate", "description": source, "reference": reference})
    auc = figures["classifier_auc"]
    spread = f" +- {auc['std']:.4f}" if auc["std"] is not None else ""
    measured = f"{auc['mean']:.4f}{spread} ({args.seeds} seed{'s' if args.seeds > 1 else ''}"
    heading = title(model.manifest.name, reference["path"], n, f"{measured})")
    tails_heading = title(model.manifest.name, reference["path"], len(chosen), f"{measured}, {n:,} a side)")
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, generated, chosen[:n], heading)
    save(tails_figure(figures["tails"], figures.get("joint_tail")), args.out / "tails.png", tails_heading)
    save(ess_figure(figures["boosted_ess"]), args.out / "boosted_ess.png", heading)
    save(radial_figure(figures["radial_profile"]), args.out / "radial.png", tails_heading)
    (args.out / "evaluation.json").write_text(json.dumps(figures, indent=2) + "\n")
    if args.update_model:
        manifest = model.manifest
        recorded = {**manifest.figures_of_merit, "evaluation": figures, "verdict": figures["verdict"]}
        updated = manifest.model_copy(update={"figures_of_merit": recorded})
        updated.save(args.model)
    shown = ("classifier_auc", "classifier_auc_painted", "one_feature_auc", "fpd", "kpd")
    print(json.dumps({key: figures[key] for key in shown}, indent=2))
    print("\n".join(lines(figures["verdict"])))
    return 0
