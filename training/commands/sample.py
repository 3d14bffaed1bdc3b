"""``muongan sample``: make a weighted reference muon sample with Pythia 8 and write it to a file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from muongan.errors import UserError
from service.contract.muons import SampleError
from service.samples import FORMATS, format_from_suffix, write_sample
from training.reference.driver import generate
from training.reference.geometry import FAIRSHIP_PAINT_CM, FAIRSHIP_SMEAR_CM
from training.reference.settings import SourceSettings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pot", type=int, required=True, help="protons on target to simulate")
    parser.add_argument("--seed", type=int, required=True, help="random seed; same seed and POT give the same file")
    parser.add_argument("--out", required=True, help="output file (.parquet, .npy, .arrow or .root)")
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
    parser.add_argument(
        "--bias",
        choices=("none", "tail"),
        default="none",
        help="tail: spend the CPU on muons with |p| > 100 GeV/c and pT > 3 GeV/c (SHiP's shield region), "
        "with exact weights; the file's metadata says so (training/reference/biasing.py)",
    )
    parser.add_argument(
        "--beam-spot",
        action="store_true",
        help="paint FairShip's beam spot (0.8 cm Gaussian on a 5 cm ring) on the primary interactions; "
        "then run FairShip with --SmearBeam 0 --PaintBeam 0 (default: no spot, as SHiP's production)",
    )


def _check(args: argparse.Namespace) -> None:
    """Refuse what would fail only after the simulation: bad numbers, an unknown format, a folder that cannot
    be made or written; a missing folder is made."""
    if args.pot < 1 or args.workers < 1 or args.task_pot < 1:
        raise UserError("--pot, --workers and --task-pot must be positive")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    if args.format is None:
        try:
            format_from_suffix(args.out)
        except SampleError as error:
            raise UserError(f"{error}, or give --format") from None
    parent = Path(args.out).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no data/, where the docs write
    except OSError as error:
        raise UserError(f"cannot write {args.out!r}: cannot make {parent}: {error.strerror or error}") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {args.out!r}: {parent} is not a writable directory")


def run(args: argparse.Namespace) -> int:
    _check(args)
    settings = SourceSettings(task_pot=args.task_pot, tail_biasing=args.bias == "tail")
    if args.beam_spot:
        settings = replace(settings, beam_sigma=FAIRSHIP_SMEAR_CM, beam_paint_radius=FAIRSHIP_PAINT_CM)
    start = time.perf_counter()
    sample = generate(args.pot, args.seed, settings, workers=args.workers)
    write_sample(sample, args.out, args.format)
    wall = time.perf_counter() - start
    print(
        f"{len(sample)} muons from {args.pot} POT (muons_per_pot {float(sample.metadata['muons_per_pot']):.4g}) "
        f"in {wall:.1f} s with {args.workers} worker(s) -> {args.out}",
        file=sys.stderr,
    )
    return 0
