"""Counter-based random streams: muon ``i`` of seed ``s`` is made from block ``i // block_size`` alone.

Block ``b`` of seed ``s`` owns the Philox key ``(s, b)``; within it, each kind of input has its own
substream, starting at counter ``(0, 0, substream, 0)`` (2**128 draws apart, so they never overlap).
Separate substreams let the cheap latent inputs (aux, charge) be drawn without the expensive noise,
e.g. to sum the weights of a whole request before its first byte.

The draw order is part of the stream's definition and must never change (it would change every
muon ever served for a seed):

- ``NOISE``: ``standard_normal((rows, noise_dim), float32)``, row-major;
- ``LATENT``: ``standard_normal((rows, 4), float64)``: copula normals (plain, boosted) or smearing
  normals (enhanced);
- ``CHARGE``: ``random(rows)`` float64 uniforms; mu+ where ``u < mu_plus_fraction``;
- ``CHOICE``: ``random(rows)`` float64 uniforms; enhanced picks seed ``floor(u * n_seeds)``.

numpy fills these arrays sequentially, so drawing the first ``hi`` rows of a block gives the prefix
of drawing all of it: a request that ends inside a block draws only up to its last row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from service.contract.bounds import MAX_SEED


class Substream(IntEnum):
    NOISE = 0
    LATENT = 1
    CHARGE = 2
    CHOICE = 3


def generator(seed: int, block: int, substream: Substream) -> np.random.Generator:
    """The numpy generator of one substream of one block of one seed."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    key = np.array([seed, block], dtype=np.uint64)
    counter = np.array([0, 0, int(substream), 0], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter))


@dataclass(frozen=True)
class Segment:
    """The rows ``[lo, hi)`` of block ``block``, which are rows ``[offset, offset + hi - lo)`` of a request."""

    block: int
    lo: int
    hi: int
    offset: int

    @property
    def rows(self) -> int:
        return self.hi - self.lo


def segments(start: int, n: int, block_size: int) -> Iterator[Segment]:
    """The pieces of the blocks that ``[start, start + n)`` overlaps, in order."""
    if start < 0 or n < 0:
        raise ValueError(f"start and n must be >= 0, got start={start}, n={n}")
    position, end = start, start + n
    while position < end:
        block, lo = divmod(position, block_size)
        hi = min(block_size, end - block * block_size)
        yield Segment(block, lo, hi, position - start)
        position += hi - lo


def draw_noise(seed: int, segment: Segment, noise_dim: int) -> np.ndarray:
    """The generator noise of a segment's rows, ``(rows, noise_dim)`` float32."""
    rng = generator(seed, segment.block, Substream.NOISE)
    noise = np.empty((segment.hi, noise_dim), dtype=np.float32)
    rng.standard_normal(out=noise, dtype=np.float32)
    return noise[segment.lo :]


def draw_normals(seed: int, segment: Segment, dim: int) -> np.ndarray:
    """Standard normals of the ``LATENT`` substream, ``(rows, dim)`` float64."""
    return generator(seed, segment.block, Substream.LATENT).standard_normal((segment.hi, dim))[segment.lo :]


def draw_uniforms(seed: int, segment: Segment, substream: Substream) -> np.ndarray:
    """Uniforms in [0, 1) of a ``CHARGE`` or ``CHOICE`` substream, ``(rows,)`` float64."""
    return generator(seed, segment.block, substream).random(segment.hi)[segment.lo :]
