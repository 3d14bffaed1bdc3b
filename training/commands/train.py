"""``muongan train --sample PATH... --out models/NAME [--pot N]``: fit, keep the best, export, report.

``--sample`` takes files, folders and glob patterns (:mod:`service.samples.sets`), so a FairShip
production of many files trains as it is. Working state (prepared arrays, checkpoints, history) goes
to ``--workdir`` (default ``runs/NAME``); ``--resume`` continues from its latest checkpoint with the
config saved there and the prepared arrays as they are.

Protons on target: ``muons_per_pot`` of the model is the set's sum of weights over the POT it stands
for, from ``--pot`` or from the files' own metadata (each file's sum of weights over its
``muons_per_pot``, summed). Files without metadata (FairShip productions) need ``--pot``; a set
mixing files with and without it, or a ``--pot`` that contradicts it, is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from muongan.errors import UserError
from service.contract.manifest import AUX_GROUPS, GENERATOR, MANIFEST
from service.contract.muons import PHYSICAL_COLUMNS, UNITS, SampleError, column
from service.samples.sets import Member, expand, member, muons_per_pot
from service.samples.survey import set_digest
from training.config import AFTER_TRAINING, TrainConfig

POT_TOLERANCE = 1e-6  # relative: --pot and the metadata agree to float rounding or they contradict
FILES_LISTED = 100  # past this many files model.json records one digest over them
EXPORTED = "exported.json"  # in the workdir: where its run last exported a model, and that model's sha256


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        nargs="+",
        required=True,
        metavar="PATH",
        help="weighted muon files (npy/Parquet/Arrow/FairShip ROOT), folders or quoted glob patterns",
    )
    parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/default")
    parser.add_argument("--pot", type=float, help="protons on target the whole set stands for, e.g. 6.5e10")
    parser.add_argument("--config", type=Path, help="JSON file of TrainConfig fields (others default)")
    parser.add_argument("--steps", type=int, help="generator updates in all (overrides the config)")
    parser.add_argument("--workdir", type=Path, help="prepared arrays, checkpoints, history (default runs/<out name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    parser.add_argument("--force", action="store_true", help="replace what --out holds (without it, refused)")
    parser.add_argument("--no-report", action="store_true", help="skip the PNG report")


def check_pot_sources(members: list[Member], pot: float | None) -> None:
    """Before reading any muon: refuse a set whose POT cannot be known, or is known twice over in two ways."""
    if pot is not None and not (pot > 0 and pot < float("inf")):
        raise UserError(f"--pot must be a positive number of protons on target, got {pot:g}")
    without = [m.path.name for m in members if muons_per_pot(m.metadata) is None]
    if without and len(without) < len(members):
        raise UserError(
            f"{len(without)} of {len(members)} files carry no 'muons_per_pot' metadata (e.g. {without[0]}) "
            "and the others do: train them as separate sets, or convert them alike"
        )
    if without and pot is None:
        raise UserError(
            f"{without[0]}: no 'muons_per_pot' metadata (FairShip files carry none): pass --pot N, "
            "the protons on target the whole set stands for"
        )


def resolve_pot(info: dict[str, Any], pot: float | None) -> tuple[float, str]:
    """The POT of the set and where it came from; ``--pot`` must agree with the metadata when both exist."""
    from_metadata = info["pot_from_metadata"]
    if from_metadata is not None and pot is not None and abs(pot - from_metadata) > POT_TOLERANCE * from_metadata:
        raise UserError(
            f"--pot {pot:g} contradicts the files' metadata, which says {from_metadata:.9g} protons on target "
            "(sum of weights over muons_per_pot, summed over files): drop --pot or fix it"
        )
    if pot is not None:
        return pot, "--pot"
    return float(from_metadata), "metadata"


def sample_description(info: dict[str, Any], pot: float, source: str) -> dict[str, Any]:
    """``model.json`` ``training_sample``: the files (name and sha256; past 100 of them one digest), counts, POT."""
    files = info["files"]
    listed: dict[str, Any] = {"files": files}
    if len(files) > FILES_LISTED:
        listed = {"file_count": len(files), "files_sha256": set_digest([(f["path"], f["sha256"]) for f in files])}
    fields = ("muons", "skipped_rows", "sum_weights", "training_muons", "holdout_muons")
    return {**listed, **{name: info[name] for name in fields}, "pot": pot, "pot_source": source}


def resolve_config(args: argparse.Namespace, workdir: Path) -> TrainConfig:
    """The run's config: ``--config`` (or the defaults); on ``--resume`` the saved one, which ``--config``
    may change only in what is used after training (the calibration): a resumed run is the run it continues."""
    saved = workdir / "config.json"
    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    if args.resume and saved.exists():
        previous = TrainConfig.load(saved)
        if args.config:
            fixed = [
                name
                for name in TrainConfig.model_fields
                if name not in AFTER_TRAINING and getattr(config, name) != getattr(previous, name)
            ]
            if fixed:
                raise UserError(
                    f"--config changes {', '.join(fixed)} of the run in {workdir}: a resumed run keeps its "
                    f"config but for {', '.join(AFTER_TRAINING)}; start a new --workdir"
                )
            previous = previous.model_copy(update={name: getattr(config, name) for name in AFTER_TRAINING})
        config = previous
    if args.steps is not None:
        config = config.model_copy(update={"steps": args.steps})
    return config


class _Phases:
    """Wall and CPU seconds of each phase on stderr (CPU counts every thread: on shared cores it is the
    honest measure, wall time depends on who else runs)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def done(self, name: str, what: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        print(f"{name}: {wall - self.wall:.1f} s ({cpu - self.cpu:.1f} CPU-s) {what}", file=sys.stderr)
        self.wall, self.cpu = wall, cpu


def check_out(out: Path, workdir: Path, args: argparse.Namespace) -> None:
    """Before any work: an existing ``--out`` is replaced only with ``--force``, or by ``--resume`` when it holds
    the model this run's workdir exported there last (a resumed run continues the run that wrote it)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if args.force or not any(out.iterdir()) or (args.resume and _exported_here(out, workdir)):
        return
    why = "holds a model" if (out / MANIFEST).exists() else "exists and is not empty"
    ours = f" that {workdir} did not export" if args.resume else ""
    raise UserError(f"--out {out} {why}{ours}: pass --force to replace it, or choose another --out")


def _exported_here(out: Path, workdir: Path) -> bool:
    """Whether ``out`` holds, unchanged, the model this workdir's run last exported (``exported.json``)."""
    try:
        record = json.loads((workdir / EXPORTED).read_text())
        current = json.loads((out / MANIFEST).read_text())["files"][GENERATOR]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(record.get("out") == str(out.resolve()) and record.get("generator_sha256") == current)


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be a positive number of generator updates, got {args.steps}")
    try:
        files = expand(args.sample)
        check_pot_sources([member(path) for path in files], args.pot)
    except SampleError as error:
        raise UserError(str(error)) from None
    workdir = args.workdir or Path("runs") / args.out.name
    if not args.resume and (workdir / "checkpoints").exists():
        raise UserError(f"{workdir} holds a previous run: pass --resume, or another --workdir")
    check_out(args.out, workdir, args)
    config = resolve_config(args, workdir)
    from training.model.folder import staged_folder  # after the checks: training.model imports TensorFlow

    with staged_folder(args.out) as folder:  # the model appears under --out whole, once written
        sha256 = train(args, files, config, workdir, folder)
    record = {"out": str(args.out.resolve()), "generator_sha256": sha256}
    (workdir / EXPORTED).write_text(json.dumps(record) + "\n")
    return 0


def holdout_verdict(
    generated: np.ndarray, holdout: np.ndarray, calibrated: dict[str, Any], region: dict[str, Any]
) -> dict[str, Any]:
    """The verdict on what training can measure: the held-out AUC, and the tail rates and physicality of as
    many generated muons as the held-out part has; boosted generation is left to ``muongan evaluate``,
    whose verdict on an independent reference replaces this one (``--update-model``)."""
    from training.evaluation.physical import violations
    from training.evaluation.tails import tail_table
    from training.evaluation.verdict import verdict

    figures = {
        "classifier_auc": {"mean": calibrated["classifier_auc"], "std": None},
        "n_per_side": calibrated["n_reference"],
        "tails": tail_table(generated, holdout, float(holdout[:, column("z")].min())),
        "physical_checks": {"plain": {"n": len(generated), "violations": violations(generated, region)}},
    }
    source = f"muongan train on the training sample's held-out part ({len(holdout):,} muons)"
    return verdict(figures, {"command": "train", "description": source})


def train(args: argparse.Namespace, files: list[Path], config: TrainConfig, workdir: Path, folder: Path) -> str:
    """Prepare, train, calibrate, export into ``folder`` (renamed onto ``--out`` by the caller) and judge the
    model; returns the generator's sha256."""
    from training.evaluation.report import title, write_report
    from training.evaluation.verdict import lines
    from training.loop import Trainer
    from training.model import export_model, library_versions
    from training.preparation import prepare
    from training.preparation.beam_spot import beam_spot_record

    workdir.mkdir(parents=True, exist_ok=True)
    config.save(workdir / "config.json")
    clock = _Phases()
    try:
        data = prepare(files, config, workdir)
    except SampleError as error:
        raise UserError(str(error)) from None
    pot, pot_source = resolve_pot(data.info, args.pot)
    clock.done("preparation", f"for {data.info['muons']:,} muons")
    trainer = Trainer(config, data, workdir)
    if args.resume:
        print(f"resuming at step {trainer.resume()}")
    first = int(trainer.step.numpy())
    trainer.pretrain_aux_heads()
    clock.done("aux heads", f"for {config.aux_head_steps} steps")
    best = trainer.train(config.steps)
    clock.done("steps", f"for {config.steps - first}, evaluations included")
    calibration = trainer.calibrate()
    calibrated = trainer.holdout_figures(best["step"])
    clock.done("calibration", f"of {', '.join(calibration.knots) or 'no column'} on {config.calibration_muons:,} muons")
    generated = trainer.generate(len(data.holdout), seed=config.seed)
    judged = holdout_verdict(generated, data.holdout, calibrated, data.scaling.to_dict())
    manifest = export_model(
        folder,
        trainer.physical_generator.function,
        trainer.physical_discriminator.function,
        {
            "name": args.out.name,
            "columns": list(PHYSICAL_COLUMNS),
            "units": {name: UNITS[name] for name in PHYSICAL_COLUMNS},
            "noise_dim": config.noise_dim,
            "aux_correlation": data.correlation.tolist(),
            "aux_range": dict(zip(AUX_GROUPS, data.aux_range.T.tolist(), strict=True)),
            "mu_plus_fraction": data.mu_plus_fraction,
            "muons_per_pot": data.info["sum_weights"] / pot,
            "beam_spot": beam_spot_record(data.info["files"], data.holdout, data.holdout[:, -1]),
            "block_size": config.block_size,
            "training_sample": sample_description(data.info, pot, pot_source),
            "hyperparameters": {
                **config.model_dump(),
                "feature_scaling": data.scaling.to_dict(),
                "marginal_calibration": calibration.to_dict(),
            },
            "figures_of_merit": {
                "training_holdout": best,
                "training_holdout_calibrated": calibrated,
                "verdict": judged,
            },
            "versions": library_versions(),
        },
        seed=config.seed,
    )
    if not args.no_report:
        measured = f"{calibrated['n_reference']:,} a side, step {best['step']}, calibrated"
        auc = f"{calibrated['classifier_auc']:.4f} ({measured})"
        names = [f["path"] for f in data.info["files"]]
        sample = names[0] if len(names) == 1 else f"{len(names)} files"
        heading = title(args.out.name, f"{sample} held-out part", len(data.holdout), auc)
        write_report(folder, generated, data.holdout, heading)
    print(json.dumps(manifest.figures_of_merit, indent=2))
    print("\n".join(lines(judged)))
    return manifest.files[GENERATOR]
