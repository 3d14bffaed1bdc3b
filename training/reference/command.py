"""``muongan sample``: make a weighted reference muon sample with Pythia 8 and write it to a file."""

from __future__ import annotations

import argparse
import os
import sys
import time

from service.samples import FORMATS, write_sample
from training.reference.driver import generate
from training.reference.settings import SourceSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pot", type=int, required=True, help="protons on target to simulate")
    parser.add_argument("--seed", type=int, required=True, help="random seed; same seed and POT give the same file")
    parser.add_argument("--out", required=True, help="output file (.parquet by default; .npy, .arrow, .root)")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: from the file suffix)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    parser.add_argument(
        "--task-pot",
        type=int,
        default=SourceSettings.task_pot,
        help="protons per seeded task (the sample depends on it, not on --workers)",
    )


def run(args: argparse.Namespace) -> int:
    if args.pot < 1 or args.workers < 1 or args.task_pot < 1:
        print("muongan sample: --pot, --workers and --task-pot must be positive", file=sys.stderr)
        return 2
    start = time.perf_counter()
    sample = generate(args.pot, args.seed, SourceSettings(task_pot=args.task_pot), workers=args.workers)
    write_sample(sample, args.out, args.format)
    wall = time.perf_counter() - start
    print(
        f"{len(sample)} muons from {args.pot} POT (muons_per_pot {float(sample.metadata['muons_per_pot']):.4g}) "
        f"in {wall:.1f} s with {args.workers} worker(s) -> {args.out}",
        file=sys.stderr,
    )
    return 0
