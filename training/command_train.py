"""``muongan train --sample FILE --out models/NAME``: fit, keep the best, export, report.

Working state (checkpoints, history) goes to ``--workdir`` (default ``runs/NAME``); ``--resume``
continues from its latest checkpoint with the config saved there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.contract.manifest import AUX_GROUPS, sha256_of
from service.contract.muons import PHYSICAL_COLUMNS, UNITS
from service.samples import Sample, read_sample
from training.config import TrainConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", type=Path, required=True, help="weighted muon sample (npy/Parquet/Arrow/ROOT)")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/default")
    parser.add_argument("--config", type=Path, help="JSON file of TrainConfig fields (others default)")
    parser.add_argument("--steps", type=int, help="generator updates in all (overrides the config)")
    parser.add_argument("--workdir", type=Path, help="checkpoints and history (default runs/<out name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    parser.add_argument("--no-report", action="store_true", help="skip the PNG report")


def sample_description(path: Path, sample: Sample) -> dict[str, Any]:
    weights = sample.muons[:, -1].astype(float)
    return {
        "path": path.name,
        "sha256": sha256_of(path),
        "n": len(sample),
        "sum_weights": float(weights.sum()),
        "metadata": sample.metadata,
    }


def muons_per_pot(sample: Sample, path: Path) -> float:
    try:
        return float(sample.metadata["muons_per_pot"])
    except (KeyError, ValueError):
        raise SystemExit(f"{path}: sample metadata has no numeric 'muons_per_pot' (sum of weights per POT)") from None


def resolve_config(args: argparse.Namespace, workdir: Path) -> TrainConfig:
    saved = workdir / "config.json"
    if args.resume and saved.exists():
        config = TrainConfig.load(saved)
    else:
        config = TrainConfig.load(args.config) if args.config else TrainConfig()
    if args.steps is not None:
        config = config.model_copy(update={"steps": args.steps})
    return config


def run(args: argparse.Namespace) -> int:
    from training.dataset import prepare_cached
    from training.export import export_model, library_versions
    from training.gan import Trainer, aux_range
    from training.report import title, write_report

    workdir = args.workdir or Path("runs") / args.out.name
    config = resolve_config(args, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.resume and (workdir / "checkpoints").exists():
        raise SystemExit(f"{workdir} holds a previous run: pass --resume, or another --workdir")
    config.save(workdir / "config.json")
    sample = read_sample(args.sample)
    per_pot = muons_per_pot(sample, args.sample)
    description = sample_description(args.sample, sample)
    data = prepare_cached(sample, config, workdir / "prepared.npz", description["sha256"])
    trainer = Trainer(config, data, workdir)
    if args.resume:
        print(f"resuming at step {trainer.resume()}")
    best = trainer.train(config.steps)
    manifest = export_model(
        args.out,
        trainer.physical_generator.function,
        trainer.physical_discriminator.function,
        {
            "name": args.out.name,
            "columns": list(PHYSICAL_COLUMNS),
            "units": {name: UNITS[name] for name in PHYSICAL_COLUMNS},
            "noise_dim": config.noise_dim,
            "aux_correlation": data.correlation.tolist(),
            "aux_range": dict(zip(AUX_GROUPS, aux_range(data.aux).T.tolist(), strict=True)),
            "mu_plus_fraction": data.mu_plus_fraction,
            "muons_per_pot": per_pot,
            "block_size": config.block_size,
            "training_sample": description,
            "hyperparameters": {**config.model_dump(), "feature_scaling": data.scaling.to_dict()},
            "figures_of_merit": {"training_holdout": best},
            "versions": library_versions(),
        },
        seed=config.seed,
    )
    if not args.no_report:
        auc = f"{best['classifier_auc']:.4f} ({best['n_reference']:,} a side, step {best['step']})"
        heading = title(args.out.name, f"{args.sample.name} held-out part", len(data.holdout), auc)
        write_report(args.out, trainer.generate(len(data.holdout), seed=config.seed), data.holdout, heading)
    print(json.dumps(manifest.figures_of_merit, indent=2))
    return 0
