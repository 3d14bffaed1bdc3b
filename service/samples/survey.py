"""One streaming pass over a sample set: counts, sums, ranges and a fixed-size seeded subsample.

The subsample (a :class:`Reservoir`) keeps the rows with the smallest keys of a seeded hash of each
row's bytes. The keys depend on the muon alone, never on the file it came from or its position, so
the same set named in any order, split into files in any way, gives the same subsample; and a row's
fate in the held-out split (:func:`unit`) is decided the same way. Memory is the subsample's, not the
set's: weighted quantiles of a 1e8-muon production come from 2^20 rows chosen uniformly at random.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.contract.manifest import sha256_of
from service.contract.muons import COLUMNS, SampleError, column
from service.samples import sets

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
QUANTILES = (0.001, 0.5, 0.999)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 whose output bits all depend on every input bit."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def row_hash(muons: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each canonical float32 row's 32 bytes (identical rows hash alike)."""
    words = np.ascontiguousarray(muons, dtype=np.float32).view(np.uint64)
    h = _mix(np.full(len(words), np.uint64(seed % 2**64) + _GOLDEN, dtype=np.uint64))
    for j in range(words.shape[1]):
        h = _mix(h ^ words[:, j])
    return h


def unit(hashes: np.ndarray, stream: int) -> np.ndarray:
    """Independent uniform [0, 1) numbers from row hashes, one stream per purpose (split, ties, ...)."""
    mixed = _mix(hashes + np.uint64((stream + 1) * int(_GOLDEN) % 2**64))
    result: np.ndarray = (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return result


def reservoir_key(hashes: np.ndarray) -> np.ndarray:
    return _mix(hashes ^ _GOLDEN)


class Reservoir:
    """The ``capacity`` rows of smallest key seen so far: a uniform subsample without replacement."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows = np.empty((0, len(COLUMNS)), np.float32)
        self.keys = np.empty(0, np.uint64)

    def add(self, rows: np.ndarray, keys: np.ndarray) -> None:
        if len(self.keys) == self.capacity:  # full: only smaller keys can enter (most rows of a big set)
            below = keys < self.keys.max()
            rows, keys = rows[below], keys[below]
        rows, keys = np.concatenate([self.rows, rows]), np.concatenate([self.keys, keys])
        if len(keys) > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            rows, keys = rows[keep], keys[keep]
        self.rows, self.keys = rows, keys

    def in_key_order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.keys, kind="stable")
        return self.rows[order], self.keys[order]


@dataclass
class FileSummary:
    path: Path
    layout: str
    metadata: dict[str, str]
    muons: int = 0
    skipped: Counter[int] = field(default_factory=Counter)
    sum_weights: float = 0.0

    @property
    def muons_per_pot(self) -> float | None:
        return sets.muons_per_pot(self.metadata)


@dataclass
class Survey:
    """What one pass over a set learnt: per-file summaries, set totals, ranges and the subsample."""

    files: list[FileSummary]
    reservoir: Reservoir
    minimum: np.ndarray = field(default_factory=lambda: np.full(len(COLUMNS), np.inf))
    maximum: np.ndarray = field(default_factory=lambda: np.full(len(COLUMNS), -np.inf))
    sum_mu_plus: float = 0.0

    @property
    def muons(self) -> int:
        return sum(f.muons for f in self.files)

    @property
    def skipped(self) -> Counter[int]:
        return sum((f.skipped for f in self.files), Counter())

    @property
    def sum_weights(self) -> float:
        return sum(f.sum_weights for f in self.files)

    def pot_from_metadata(self) -> float | None:
        """Protons on target the set stands for by its files' metadata: each file's sum of weights over its
        ``muons_per_pot``, summed over files; None unless every file carries one."""
        per_pot = [f.muons_per_pot for f in self.files]
        if any(value is None for value in per_pot):
            return None
        return sum(f.sum_weights / value for f, value in zip(self.files, per_pot, strict=True) if value)

    def quantiles(self) -> dict[str, dict[str, float]]:
        """Per column: min and max of the whole set, weighted quantiles estimated on the subsample.

        The weight column gets its range only (a weighted quantile of the weights themselves misleads).
        """
        rows = self.reservoir.rows
        weights = rows[:, -1].astype(np.float64)
        result = {}
        for name in COLUMNS[1:]:
            i = column(name)
            stats = {"min": float(self.minimum[i]), "max": float(self.maximum[i])}
            if len(rows) and name != "weight":
                values = np.quantile(rows[:, i], QUANTILES, weights=weights, method="inverted_cdf")
                stats |= {f"q{q:g}": float(v) for q, v in zip(QUANTILES, values, strict=True)}
            result[name] = stats
        return result


ChunkHook = Callable[[np.ndarray, np.ndarray, Path], None]


def survey(
    files: Sequence[Path], seed: int, capacity: int, on_chunk: ChunkHook | None = None, progress: bool = True
) -> Survey:
    """Read every file once, chunk by chunk; ``on_chunk(muons, hashes, path)`` sees every chunk on the way."""
    members = [sets.member(path) for path in files]  # layouts and metadata first: cheap, and fails early
    result = Survey([FileSummary(m.path, m.layout, m.metadata) for m in members], Reservoir(capacity))
    bar = tqdm(total=len(files), unit="file", desc="read", file=sys.stderr, disable=None if progress else True)
    with bar:
        for summary in result.files:
            for chunk in sets.chunks(summary.path):
                muons = chunk.muons
                hashes = row_hash(muons, seed)
                weights = muons[:, -1].astype(np.float64)
                summary.muons += len(muons)
                summary.skipped += chunk.skipped
                summary.sum_weights += float(weights.sum())
                if len(muons):
                    result.sum_mu_plus += float(weights[muons[:, column("pdg")] < 0].sum())
                    result.minimum = np.minimum(result.minimum, muons.min(axis=0))
                    result.maximum = np.maximum(result.maximum, muons.max(axis=0))
                result.reservoir.add(muons, reservoir_key(hashes))
                if on_chunk is not None:
                    try:
                        on_chunk(muons, hashes, summary.path)
                    except SampleError as error:
                        raise SampleError(f"{summary.path}: {error}") from None
                bar.set_postfix(muons=f"{result.muons:.3g}", refresh=False)
            bar.update(1)
    return result


def subsample(
    paths: Sequence[str | Path], capacity: int, seed: int, progress: bool = False
) -> tuple[np.ndarray, Survey]:
    """At most ``capacity`` muons of a set, drawn uniformly at random (all of a smaller set), and its survey.

    The rows keep their weights; in a sum over them each stands for ``survey.sum_weights / (sum of the
    subsample's weights)`` of the set's weight.
    """
    found = survey(sets.expand(paths), seed, capacity, progress=progress)
    rows, _ = found.reservoir.in_key_order()
    return rows, found


def identity(files: Sequence[Path]) -> dict[str, str]:
    """Name and sha256 of a file, or for a set a name and one sha256 over each file's name and sha256."""
    digests = [(path.name, sha256_of(path)) for path in files]
    if len(digests) == 1:
        return {"path": digests[0][0], "sha256": digests[0][1]}
    return {"path": f"{digests[0][0]} ... {digests[-1][0]} ({len(digests)} files)", "sha256": set_digest(digests)}


def set_digest(digests: Sequence[tuple[str, str]]) -> str:
    """One sha256 over the lines ``NAME SHA256`` of a set's files, in order."""
    return hashlib.sha256("".join(f"{name} {digest}\n" for name, digest in digests).encode()).hexdigest()


def plotted_sample(paths: Sequence[str | Path], capacity: int) -> tuple[np.ndarray, str, float | None]:
    """Muons to plot from a set, its label and its muons_per_pot (None if the files do not all carry one).

    Beyond ``capacity`` muons the plot shows a random subsample whose weights are scaled up to the
    set's sum, so weighted histograms and the quoted POT stay those of the whole set.
    """
    muons, found = subsample(paths, capacity, seed=0)
    if len(muons) < found.muons:
        muons[:, -1] *= np.float32(found.sum_weights / muons[:, -1].astype(np.float64).sum())
    label = found.files[0].path.name if len(found.files) == 1 else f"{len(found.files)} files"
    pot = found.pot_from_metadata()
    return muons, label, found.sum_weights / pot if pot else None
