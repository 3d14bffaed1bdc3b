"""``muongan generate``: muons into a file (npy, Parquet, Arrow, CSV, FairShip ROOT), in-process or from a server.

In-process (``--model DIR``) is what a batch job on a cluster node runs: no server, the same
:class:`~service.engine.generation.Engine` as the service, so the muons are bit-identical to what the service
returns for the same model, execution provider, seed and rows. ``--url`` streams them from a service
instead. Either way the file is written block by block (memory stays one block for any ``--n``),
carries the request's metadata (seed, start, n, model sha256, equivalent POT, mode settings), and only
appears under its name once complete.

Sharding: job ``k`` of many runs ``--seed S --start k*N --n N``; the shards never overlap and together
equal one long request.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from service.contract.bounds import MAX_SCALE, MAX_SEED, MAX_START, MIN_SCALE
from service.contract.manifest import AUX_GROUPS
from service.contract.modes import Boosted, Custom, Enhanced, Mode, Plain
from service.engine.model import usable_cores
from service.samples.root import Z_OFFSET_CM
from service.samples.sinks import FORMATS


def _count(text: str) -> int:
    value = int(float(text)) if "e" in text.lower() else int(text)  # accept 1e6
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive(text: str) -> int:
    """A count that must be at least 1 (muons to write, threads to draw with)."""
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _start(text: str) -> int:
    value = _count(text)
    if value > MAX_START:
        raise argparse.ArgumentTypeError(f"must be <= 2**62, got {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**64), got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="model folder: generate in-process, no server needed")
    source.add_argument("--url", help="service URL, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--api-key", default=os.environ.get("MUONGAN_API_KEY"), help="bearer token for --url (env MUONGAN_API_KEY)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output file; its suffix names the format")
    parser.add_argument("--format", choices=FORMATS, help="output format if the suffix does not say it")
    parser.add_argument("--n", type=_positive, help="number of muons (not with --aux: one muon per aux row)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the random stream (default %(default)s)")
    parser.add_argument(
        "--start", type=_start, default=0, help="index of the first muon in the seed's stream (default %(default)s)"
    )
    boost = parser.add_argument_group("boosted (importance-weighted) muons: widen a group's aux marginal by a scale")
    for group in AUX_GROUPS:
        boost.add_argument(
            f"--scale-{group}",
            type=float,
            default=1.0,
            metavar="S",
            help=f"{group} scale, {MIN_SCALE:g} to {MAX_SCALE:g}",
        )
    other = parser.add_argument_group("other modes")
    other.add_argument("--aux", type=Path, help="custom: npy file of an (n, 4) aux array (xy, z, pt, pz)")
    other.add_argument(
        "--seeds",
        type=Path,
        help="enhanced: a sample of seed muons (npy, Parquet, Arrow or ROOT); seeds beyond the model's trained aux "
        "range are clipped into it and counted, and refused only if they are most of the sample",
    )
    other.add_argument("--smear", type=float, help="enhanced: aux smearing (default: Scott's rule)")
    other.add_argument("--plain-fraction", type=float, default=0.1, help="enhanced: plain share (default 0.1)")
    parser.add_argument(
        "--z-offset-cm",
        type=float,
        default=Z_OFFSET_CM,
        help="ROOT: z_FairShip[m] = (z[cm] + offset) / 100 (default %(default)s)",
    )
    local = parser.add_argument_group("in-process (--model)")
    local.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="onnxruntime device")
    local.add_argument("--threads", type=_count, default=0, help="onnxruntime threads (0: onnxruntime's choice)")
    local.add_argument(
        "--draw-threads",
        type=_positive,
        default=usable_cores(),
        help="threads drawing random inputs (default: the cores)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def mode_of(args: argparse.Namespace) -> Mode:
    """The mode the options ask for; at most one of boost scales, ``--aux`` and ``--seeds``."""
    from service.samples import read_sample
    from service.samples.npy import load_array

    scale = {group: getattr(args, f"scale_{group}") for group in AUX_GROUPS if getattr(args, f"scale_{group}") != 1}
    chosen = [name for name, used in (("--scale-*", scale), ("--aux", args.aux), ("--seeds", args.seeds)) if used]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)} ask for different modes; use one")
    if args.aux is not None:
        return Custom(load_array(args.aux))
    if args.seeds is not None:
        return Enhanced(read_sample(args.seeds).muons, args.smear, args.plain_fraction)
    return Boosted(scale) if scale else Plain()


def _rows(args: argparse.Namespace, mode: Mode) -> int:
    if isinstance(mode, Custom):
        if args.n is not None and args.n != len(mode.aux):
            raise ValueError(f"--aux holds {len(mode.aux)} rows (one muon each) but --n is {args.n}")
        return len(mode.aux)
    if args.n is None:
        raise ValueError("--n is required")
    return int(args.n)


def generate_in_process(
    args: argparse.Namespace, mode: Mode, n: int, progress: Callable[[int], object]
) -> dict[str, str]:
    """Run the service's engine here and write the file; returns the metadata written."""
    from service.contract.modes import engine_source
    from service.engine.generation import Engine, Request
    from service.engine.model import Model
    from service.http import responses
    from service.samples.sinks import open_sink

    model = Model.load(args.model, args.device, args.threads)
    engine = Engine(model, args.draw_threads)
    try:
        source, settings = engine_source(engine, mode)
        prepared = engine.prepare(Request(args.seed, args.start, n, source))
        metadata = responses.describe(engine, prepared, mode.name, settings)
        with open_sink(args.out, n, metadata, args.format, args.z_offset_cm) as sink:
            for block in engine.blocks(prepared):
                sink.write(block)
                progress(len(block))
    finally:
        engine.close()
    return metadata


def generate_from_server(
    args: argparse.Namespace, mode: Mode, n: int, progress: Callable[[int], object]
) -> dict[str, str]:
    from service.client import MuonClient

    with MuonClient(args.url, args.api_key) as client:
        _, metadata = client.save(
            args.out, n, args.seed, args.start, mode, args.format, args.z_offset_cm, progress=progress
        )
    return metadata


def summary(path: Path, metadata: dict[str, str]) -> str:
    n, start = int(metadata["n"]), int(metadata["start"])
    text = (
        f"{path}: {n:,} {metadata['mode']} muons, seed {metadata['seed']} rows [{start:,}, {start + n:,}), "
        f"equivalent POT {float(metadata['equivalent_pot']):.6g}, model {metadata['model_name']} "
        f"(generator sha256 {metadata['model_sha256'][:16]}...)"
    )
    if "effective_sample_size" in metadata:
        text += f", effective sample size {float(metadata['effective_sample_size']):.6g}"
    if "clipped_seeds" in metadata:
        clipped, seeds = int(metadata["clipped_seeds"]), int(metadata["seeds"])
        text += f", {clipped:,} of {seeds:,} seeds clipped into the trained aux range"
    return text + f", {beam_spot_advice(metadata)}"


def beam_spot_advice(metadata: dict[str, str]) -> str:
    """How to run FairShip on the file: its model's beam-spot convention and the flags that go with it."""
    convention, flags = metadata.get("beam_spot", "unknown"), metadata.get("fairship_flags", "")
    if convention in ("painted", "spotless"):
        return f"beam spot {convention}: run FairShip with {flags}"
    return f"beam spot {flags or 'unknown: the metadata does not say'}"  # flags: "unknown: why"


def run(args: argparse.Namespace) -> int:
    import httpx
    from tqdm import tqdm

    from service.client import MuonServiceError
    from service.commands.signals import Stopped, stop_on_signals
    from service.engine.model import ModelError
    from service.samples.sinks import file_format

    try:
        with stop_on_signals():
            try:
                file_format(args.out, args.format)
                mode = mode_of(args)
                n = _rows(args, mode)
            except ValueError as error:  # SampleError is a ValueError
                print(f"muongan generate: {error}", file=sys.stderr)
                return 2
            make = generate_from_server if args.url else generate_in_process
            with tqdm(total=n, unit="muon", unit_scale=True, file=sys.stderr, disable=args.no_progress) as bar:
                try:
                    args.out.parent.mkdir(parents=True, exist_ok=True)  # e.g. data/ in a fresh clone
                    metadata = make(args, mode, n, bar.update)
                except (ModelError, ValueError, OSError) as error:
                    bar.close()
                    print(f"muongan generate: {error}", file=sys.stderr)
                    return 2
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as error:
                    bar.close()  # no server there, or not an http(s) URL: the user's to fix
                    print(f"muongan generate: cannot connect to the service at {args.url}: {error}", file=sys.stderr)
                    return 2
                except (MuonServiceError, httpx.HTTPError) as error:
                    bar.close()  # the service's own errors name their URL; httpx's (a dropped stream) do not
                    where = "" if isinstance(error, MuonServiceError) else f"the service at {args.url}: "
                    print(f"muongan generate: {where}{error}", file=sys.stderr)
                    return 1
    except Stopped as stop:
        print(f"muongan generate: {stop} before {args.out} was complete; nothing written", file=sys.stderr)
        return stop.exit_status
    print(summary(args.out, metadata))
    return 0
