"""``muongan plot``: the kinematics grid and |p|-pT plots of muons, to PNG, from a sample file or a model.

From a model (``--model DIR --n N --seed S``) the muons are the plain muons the service would send
for that slice, so the plot matches ``GET /v1/plot`` with the same parameters. Histograms are weighted
(boosted and enhanced files plot their physical distributions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.plots import figures

PLOTTED_MUONS = 4_000_000  # a larger sample set is plotted from this many muons drawn at random


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--sample", nargs="+", metavar="PATH", help="muon files (npy, Parquet, Arrow, FairShip ROOT), folders, globs"
    )
    source.add_argument("--model", type=Path, help="model folder: plot plain muons generated in-process")
    parser.add_argument("--n", type=int, default=100_000, help="--model: number of muons (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="--model: seed (default %(default)s)")
    parser.add_argument("--start", type=int, default=0, help="--model: first muon index (default %(default)s)")
    parser.add_argument(
        "--kind", choices=[*figures.KINDS, "all"], default="all", help="which plot (default %(default)s: every kind)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("plots"),
        help="a .png file (one --kind), or a folder that gets KIND.png for each kind (default %(default)s)",
    )
    parser.add_argument("--dpi", type=int, default=figures.DPI, help="pixels per inch (default %(default)s)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="--model: device")


def _targets(args: argparse.Namespace) -> dict[str, Path]:
    kinds = list(figures.KINDS) if args.kind == "all" else [args.kind]
    if args.out.suffix.lower() == ".png":
        if len(kinds) > 1:
            raise ValueError(f"--out {args.out} is one file: choose one --kind of {', '.join(figures.KINDS)}")
        return {kinds[0]: args.out}
    return {kind: args.out / f"{kind}.png" for kind in kinds}


def _load(args: argparse.Namespace) -> figures.Plotted:
    if args.sample is not None:
        from service.samples.survey import plotted_sample

        muons, label, per_pot = plotted_sample(args.sample, PLOTTED_MUONS)
        return figures.Plotted.of_sample(muons, label, per_pot)
    from service.engine.generation import Engine
    from service.engine.model import Model

    if args.n < 1 or args.seed < 0 or args.start < 0:
        raise ValueError("--n must be >= 1, --seed and --start >= 0")
    engine = Engine(Model.load(args.model, args.device))
    try:
        return figures.from_model(engine, args.n, args.seed, args.start)
    finally:
        engine.close()


def run(args: argparse.Namespace) -> int:
    from service.engine.model import ModelError

    try:
        targets = _targets(args)
        plotted = _load(args)
        for kind, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(figures.png(kind, plotted.muons, plotted.label, plotted.title, args.dpi))
            print(path)
    except (ValueError, ModelError, OSError) as error:  # SampleError is a ValueError
        print(f"muongan plot: {error}", file=sys.stderr)
        return 2
    return 0
