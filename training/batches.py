"""Weighted batches drawn from the memory-mapped prepared rows, one step ahead of the training loop.

Rows are drawn with probability proportional to their weight, from the whole set: a uniform number
times the total weight is looked up in the cumulative weights (``cdf.npy``), first in an in-memory
index of every 512th value, then by bisection inside one 4 kB page of the memory-mapped array. The
draws of step ``s`` come from their own generator keyed by ``(seed, stream, s)``, so a resumed run
draws exactly the batches the uninterrupted run would have.

Memory: a memory-mapped page read by the process counts in its resident set until unmapped, and
random batches over 1e8 rows would eventually touch all of them (GBs). The maps are therefore
re-opened every :data:`REMAP_EVERY` draws: the pages stay in the kernel's page cache (no disk read
next time), but the process holds at most the pages of the last few steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

_INDEX_STRIDE = 512  # float64 values per 4 kB page
REMAP_EVERY = 16
GAN, HEADS = 0, 1  # random streams: GAN steps and aux-head pre-training steps


def _every(path: Path, stride: int) -> np.ndarray:
    """Every ``stride``-th value of a 1-D npy file, read with plain reads: through a map, one value per
    page would make every page of the file resident in this process (0.8 GB at 1e8 rows)."""
    mapped = np.load(path, mmap_mode="r")
    offset, n, dtype = mapped.offset, len(mapped), mapped.dtype
    del mapped
    block = stride * 4096
    parts = []
    with path.open("rb") as file:
        for start in range(0, n, block):
            file.seek(offset + start * dtype.itemsize)
            parts.append(np.fromfile(file, dtype=dtype, count=min(block, n - start))[::stride])
    return np.concatenate(parts)


class Batches:
    """Rows of ``folder/rows.npy`` drawn with probability proportional to weight."""

    def __init__(self, folder: Path, seed: int, batch_size: int) -> None:
        self.folder, self.seed, self.batch_size = folder, seed, batch_size
        self._open()
        self.index = _every(self.folder / "cdf.npy", _INDEX_STRIDE)  # n / 512 values: 1.6 MB at 1e8 rows
        self.total = float(self._cdf[-1])
        self._draws = 0

    def _open(self) -> None:
        self._rows = np.load(self.folder / "rows.npy", mmap_mode="r")
        self._cdf = np.load(self.folder / "cdf.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self._cdf)

    def indices(self, u: np.ndarray) -> np.ndarray:
        """The row of each cumulative weight ``u`` in [0, total): the first row whose cdf exceeds it."""
        block = np.searchsorted(self.index, u, side="right")  # index[block - 1] <= u < index[block]
        lo = np.maximum((block - 1) * _INDEX_STRIDE + 1, 0)
        hi = np.minimum(block * _INDEX_STRIDE, len(self) - 1)
        lo = np.where(block == 0, 0, lo)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            right = self._cdf[mid] <= u
            lo, hi = np.where(right, mid + 1, lo), np.where(right, hi, mid)
        return lo

    def draw(self, stream: int, step: int, batches: int) -> np.ndarray:
        """``(batches, batch_size, 13)`` float32 weighted rows for ``step`` of ``stream``."""
        rng = np.random.default_rng([self.seed, stream, step])
        count = batches * self.batch_size
        self._draws += 1
        if self._draws % REMAP_EVERY == 0:
            self._open()
        drawn: np.ndarray = self._rows[self.indices(rng.random(count) * self.total)]
        return drawn.reshape(batches, self.batch_size, -1)

    def ahead(self, stream: int, start: int, stop: int, batches: int) -> Iterator[np.ndarray]:
        """:meth:`draw` for steps ``start..stop-1``, each prepared in a thread while the previous one trains."""
        if start >= stop:
            return
        with ThreadPoolExecutor(1) as pool:
            pending: Future[np.ndarray] = pool.submit(self.draw, stream, start, batches)
            for step in range(start + 1, stop + 1):
                ready = pending.result()
                if step < stop:
                    pending = pool.submit(self.draw, stream, step, batches)
                yield ready
