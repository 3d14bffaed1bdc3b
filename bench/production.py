"""Issue 11 benchmark: a FairShip production of 1e8 muons in many ROOT files, described and trained.

Three steps, each a subcommand (results as JSON lines in ``bench/results/production.jsonl``):

``make``: a production of ``--muons`` muons in ``--files`` FairShip ROOT files (11-leaf
``pythia8-Geant4`` trees, float32, zlib as ROOT writes them, one all-zero buffer row, 1% non-muon
rows of id 22 and 2112, no metadata), by resampling a ``muongan sample`` reference with replacement
and jittering every muon (momenta and position offsets by 2%, exact x = y = 0 kept, pz > 0 and |p|
below the beam kept), so the distributions, ties and weights are those of a real simulation. The
protons on target it stands for (the reference's muons_per_pot) go to ``production.json``. With ``--exact``
the files hold the reference's own muons instead (``--muons`` is then ignored): its independent batches of
protons dealt out to the files in turn, so that each file is a representative job of one production, as
FairShip would store it, and no shower is split between files.

``run``: ``muongan describe`` and ``muongan train --steps 1000`` on the first ``--files`` files,
each under ``/usr/bin/time -v`` (peak RSS of the process tree's largest process), recording wall
times, the preparation/steps split the train command prints, and peak RSS.

``feed``: steps/s of the same Trainer and config fed from the prepared rows on disk (this
issue) and from the rows held in memory and gathered in-graph (the former design), alternated.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import uproot

RESULTS = Path(__file__).parent / "results" / "production.jsonl"
P_MAX = 400.0


def _record(entry: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as file:
        file.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}) + "\n")
    print(json.dumps(entry, indent=1))


def _jittered(reference: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` muons resampled from ``reference`` with 2% multiplicative jitter, still physical."""
    muons = reference[rng.integers(0, len(reference), n)].astype(np.float64)
    muons[:, 1:3] *= 1 + 0.02 * rng.standard_normal((n, 2))  # x = y = 0 stays exactly 0
    muons[:, 3] += 0.02 * (muons[:, 3] - reference[:, 3].min()) * rng.standard_normal(n)
    muons[:, 3] = np.maximum(muons[:, 3], reference[:, 3].min())
    muons[:, 4:7] *= 1 + 0.02 * rng.standard_normal((n, 3))
    muons[:, 6] = np.abs(muons[:, 6])
    p = np.linalg.norm(muons[:, 4:7], axis=1)
    muons[:, 4:7] *= np.minimum(1.0, 0.999 * P_MAX / p)[:, None]
    return muons.astype(np.float32)


def _dealt(metadata: dict[str, str], files: int) -> list[np.ndarray]:
    """Row numbers of each file: the sample's independent batches of protons (its ``independent_blocks``)
    dealt out in turn."""
    from training.reference.settings import BLOCKS

    sizes = np.asarray(json.loads(metadata[BLOCKS])["rows"], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    blocks = [np.arange(start, start + size) for start, size in zip(starts, sizes, strict=True)]
    return [np.concatenate(blocks[k::files]) for k in range(files)]


def make(args: argparse.Namespace) -> None:
    from service.samples import read_sample
    from service.samples.root import TREE, fairship_branches

    reference = read_sample(args.reference)
    per_pot = float(reference.metadata["muons_per_pot"])
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    per_file, chunk, started = args.muons // args.files, 1_000_000, time.perf_counter()
    dealt = _dealt(reference.metadata, args.files) if args.exact else None
    pots: dict[str, float] = {}  # protons on target each file stands for: its sum of weights / muons_per_pot
    for i in range(args.files):
        sum_weights = 0.0
        path = args.out / f"pythia8_Geant4_10.0_withCharmandBeauty{i * 1000}_mu.root"
        if dealt is not None:
            per_file = len(dealt[i])
        with uproot.recreate(path) as file:
            tree = None
            for start in range(0, per_file, chunk):
                size = min(chunk, per_file - start)
                rows = None if dealt is None else dealt[i][start : start + size]
                muons = _jittered(reference.muons, size, rng) if rows is None else reference.muons[rows]
                sum_weights += float(muons[:, -1].astype(np.float64).sum())
                branches = fairship_branches(muons)
                if start + chunk < per_file:  # the buffer row only at the very end of the file
                    branches = {name: values[:-1] for name, values in branches.items()}
                others = rng.random(len(branches["id"]) - 1) < 0.01
                branches["id"][:-1][others] = rng.choice([22.0, 2112.0], int(others.sum()))
                if tree is None:
                    tree = file.mktree(TREE, {name: np.float32 for name in branches})
                tree.extend(branches)
        pots[path.name] = sum_weights / per_pot
        (args.out / "production.json").write_text(json.dumps({"muons_per_file": per_file, "pot": pots}) + "\n")
        print(f"{path.name}: {per_file:,} rows, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - started
    written = sum(len(rows) for rows in dealt) if dealt is not None else per_file * args.files
    _record({"step": "make", "muons": written, "files": args.files, "seconds": seconds})


def _timed(argv: list[str], log: Path) -> dict[str, Any]:
    """Run a command under GNU time; wall seconds, peak RSS (kB) and its stderr, kept in ``log``."""
    started = time.perf_counter()
    with log.open("w") as err:
        code = subprocess.run(["/usr/bin/time", "-v", *argv], stdout=subprocess.DEVNULL, stderr=err).returncode
    text = log.read_text()
    if code:
        raise SystemExit(f"{' '.join(argv)} failed ({code}); see {log}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))  # type: ignore[union-attr]
    cpu = sum(float(v) for v in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
    return {"wall_s": time.perf_counter() - started, "cpu_s": cpu, "peak_rss_mb": rss / 1024, "stderr": text}


def run(args: argparse.Namespace) -> None:
    production = json.loads((args.production / "production.json").read_text())
    files = [args.production / name for name in sorted(production["pot"])[: args.files]]
    muons_per_file, pot = production["muons_per_file"], sum(production["pot"][f.name] for f in files)
    muongan = str(Path(sys.executable).parent / "muongan")
    label = f"{len(files) * muons_per_file:.0e}"
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    describe = [muongan, "describe", *map(str, files), "--json"]
    described = _timed(describe, logs / f"describe_{label}.log") if args.describe else {}
    config = args.workdir / "config.json"
    config.write_text(Path("training/default.json").read_text())
    work = args.workdir / f"run_{label}"
    argv = [muongan, "train", "--sample", *map(str, files), "--pot", repr(pot), "--steps", str(args.steps)]
    argv += ["--out", str(args.workdir / f"model_{label}"), "--workdir", str(work), "--config", str(config)]
    trained = _timed([*argv, "--no-report"], logs / f"train_{label}.log")
    pattern = r"^(preparation|aux heads|steps): ([\d.]+) s \(([\d.]+) CPU-s\)"
    found = re.findall(pattern, trained["stderr"], re.MULTILINE)
    split = {name: {"wall_s": float(wall), "cpu_s": float(cpu)} for name, wall, cpu in found}
    _record(
        {
            "step": "run",
            "muons": len(files) * muons_per_file,
            "files": len(files),
            **{f"describe_{key}": value for key, value in described.items() if key != "stderr"},
            "train_wall_s": trained["wall_s"],
            "train_cpu_s": trained["cpu_s"],
            "train_peak_rss_mb": trained["peak_rss_mb"],
            "train_split": split,
            "steps": args.steps,
            "prepared_bytes": sum(p.stat().st_size for p in (work / "prepared").iterdir()),
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }
    )


def feed(args: argparse.Namespace) -> None:
    """Same Trainer, same config and prepared rows: batches read from disk in a thread vs rows in memory."""
    import tensorflow as tf

    from training.config import TrainConfig
    from training.loop.gan import Trainer
    from training.preparation.dataset import prepare

    config = TrainConfig.load(args.workdir / "config.json")
    prepared_dir = args.prepared
    files = json.loads((prepared_dir / "prepared" / "prepared.json").read_text())["stamp"]["files"]
    data = prepare([Path(f[0]) for f in files], config, prepared_dir, progress=False)
    trainer = Trainer(config, data, args.workdir / "feed")
    per_step = 2 * config.discriminator_steps + 1
    rows = tf.constant(np.load(data.folder / "rows.npy"))  # the whole set in memory, as before this issue
    cdf = tf.constant(np.load(data.folder / "cdf.npy"))

    @tf.function(autograph=False)
    def in_memory_step() -> dict[str, tf.Tensor]:
        u = trainer.rng.uniform([per_step * config.batch_size], dtype=tf.float64) * cdf[-1]
        index = tf.minimum(tf.searchsorted(cdf, u, side="right"), tf.shape(cdf)[0] - 1)
        batch = tf.reshape(tf.gather(rows, index), [per_step, config.batch_size, -1])
        return trainer._train_step(batch)

    def from_disk(steps: int, offset: int) -> float:
        started = time.perf_counter()
        for batch in trainer.batches.ahead(0, offset, offset + steps, per_step):
            float(trainer._train_step(batch)["d"])
        return steps / (time.perf_counter() - started)

    def in_memory(steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            float(in_memory_step()["d"])
        return steps / (time.perf_counter() - started)

    from_disk(20, 0), in_memory(20)  # trace both
    rates: dict[str, list[float]] = {"from_disk": [], "in_memory": []}
    for repeat in range(args.repeats):
        rates["from_disk"].append(from_disk(args.steps, 1000 + repeat * args.steps))
        rates["in_memory"].append(in_memory(args.steps))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    _record(
        {
            "step": "feed",
            "rows": len(trainer.batches),
            "steps_per_repeat": args.steps,
            "steps_per_s": rates,
            "medians": medians,
            "ratio_disk_over_memory": medians["from_disk"] / medians["in_memory"],
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make")
    p.add_argument("--reference", type=Path, required=True, help="a muongan sample file with muons_per_pot")
    p.add_argument("--muons", type=lambda s: int(float(s)), default=100_000_000)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--exact", action="store_true", help="the reference's own muons, split evenly over the files")
    p = sub.add_parser("run")
    p.add_argument("--production", type=Path, required=True)
    p.add_argument("--files", type=int, required=True, help="train on the first this many files")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--no-describe", dest="describe", action="store_false", help="time only the training")
    p = sub.add_parser("feed")
    p.add_argument("--prepared", type=Path, required=True, help="a run's --workdir holding prepared/")
    p.add_argument("--workdir", type=Path, required=True, help="where run left config.json")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"make": make, "run": run, "feed": feed}[args.command](args)


if __name__ == "__main__":
    main()
