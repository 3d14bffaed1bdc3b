"""Weighted batches read from the prepared rows on disk, one step ahead of the training loop.

Rows are drawn with probability proportional to their weight, from the whole set: a uniform number
times the total weight is looked up in the cumulative weights (``cdf.npy``), first in an in-memory
index of every 64th value, then within the 64 values that follow it (one 520-byte read). The draws of step ``s`` come
from their own generator keyed by ``(seed, stream, s)``, so a resumed run draws exactly the batches
the uninterrupted run would have.

Memory: the files are read with positional reads (``os.pread``), never mapped. Through a map, each
random row made a whole large page-cache folio resident in the process (measured on this kernel:
1536 rows of a 1e8-row set mapped 2 GB), so the resident set grew with the set; read, a row costs
its 52 bytes and the page cache keeps the file warm for everyone.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

_INDEX_STRIDE = 64  # cumulative weights between two index entries: the index holds n / 8 bytes (12.5 MB at 1e8)
GAN, HEADS, CALIBRATION = 0, 1, 2  # random streams: GAN steps, aux-head pre-training steps, calibration
_LOOKUP = 65536  # draws looked up at a time: each reads 65 cumulative weights (4e6 at once held 5 GB)


class _NpyFile:
    """A 2-D (or 1-D) npy file read by position: its data offset, row size and row count."""

    def __init__(self, path: Path) -> None:
        header = np.load(path, mmap_mode="r")  # parses the header only; the map is dropped at once
        self.offset, self.dtype, self.shape = header.offset, header.dtype, header.shape
        del header
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    def rows(self, starts: np.ndarray, count: int) -> np.ndarray:
        """``count`` consecutive rows from each start (clipped at the end, padded by repeating the last).

        One comprehension of reads, the rare short read at the file's end mended afterwards: this loop
        runs in the batch thread and every bytecode of it holds the GIL the training step also needs.
        """
        size, fd = count * self.row_bytes, self.fd
        positions = (self.offset + starts.astype(np.int64) * self.row_bytes).tolist()
        chunks = [os.pread(fd, size, position) for position in positions]
        if sum(map(len, chunks)) < size * len(chunks):
            chunks = [chunk + chunk[-self.row_bytes :] * ((size - len(chunk)) // self.row_bytes) for chunk in chunks]
        return np.frombuffer(b"".join(chunks), dtype=self.dtype).reshape(len(starts), count, *self.shape[1:])

    def every(self, stride: int) -> np.ndarray:
        """Every ``stride``-th value of a 1-D file, read block by block."""
        block, parts = stride * 4096, []
        for start in range(0, self.shape[0], block):
            count = min(block, self.shape[0] - start)
            raw = os.pread(self.fd, count * self.row_bytes, self.offset + start * self.row_bytes)
            parts.append(np.frombuffer(raw, dtype=self.dtype)[::stride].copy())  # a view would keep raw alive
        return np.concatenate(parts)


class Batches:
    """Rows of ``folder/rows.npy`` drawn with probability proportional to weight (``folder/cdf.npy``)."""

    def __init__(self, folder: Path, seed: int, batch_size: int) -> None:
        self.seed, self.batch_size = seed, batch_size
        self._rows, self._cdf = _NpyFile(folder / "rows.npy"), _NpyFile(folder / "cdf.npy")
        self.index = self._cdf.every(_INDEX_STRIDE)
        self.total = float(self._cdf.rows(np.array([len(self) - 1]), 1)[0, 0])

    def __len__(self) -> int:
        return int(self._cdf.shape[0])

    def indices(self, u: np.ndarray) -> np.ndarray:
        """The row of each cumulative weight ``u`` in [0, total): the first row whose cdf exceeds it."""
        block = np.maximum(np.searchsorted(self.index, u, side="right") - 1, 0)  # index[block] <= u, or block 0
        values = self._cdf.rows(block * _INDEX_STRIDE, _INDEX_STRIDE + 1)  # (m, 65): the block and one more
        within = np.sum(values <= u[:, None], axis=1)  # values are sorted: how many do not exceed u
        first = np.where(self.index[block] > u, 0, within)  # u below the very first weight: row 0
        return np.minimum(block * _INDEX_STRIDE + first, len(self) - 1)

    def draw(self, stream: int, step: int, batches: int) -> np.ndarray:
        """``(batches, batch_size, 13)`` float32 weighted rows for ``step`` of ``stream``."""
        rng = np.random.default_rng([self.seed, stream, step])
        u = rng.random(batches * self.batch_size) * self.total
        rows = np.empty((len(u), *self._rows.shape[1:]), self._rows.dtype)
        for start in range(0, len(u), _LOOKUP):
            part = u[start : start + _LOOKUP]
            rows[start : start + len(part)] = self._rows.rows(self.indices(part), 1)[:, 0]
        return rows.reshape(batches, self.batch_size, -1)

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
