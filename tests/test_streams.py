"""Counter-based streams: block addressing, prefix property, independence, and the pinned draw order."""

from __future__ import annotations

import numpy as np
import pytest

from service.contract.bounds import MAX_SEED
from service.engine.streams import Segment, Substream, draw_noise, draw_normals, draw_uniforms, generator, segments


@pytest.mark.parametrize(("start", "n"), [(0, 0), (0, 10), (5, 10), (8, 2), (3, 40), (16, 16), (7, 1)])
def test_segments_tile_the_range_along_block_boundaries(start: int, n: int) -> None:
    parts = list(segments(start, n, block_size=8))
    rows = [row for p in parts for row in range(p.block * 8 + p.lo, p.block * 8 + p.hi)]
    assert rows == list(range(start, start + n))
    assert [p.offset for p in parts] == list(np.cumsum([0] + [p.rows for p in parts])[:-1])
    assert all(0 <= p.lo < p.hi <= 8 for p in parts)


def test_segments_refuse_negative_ranges() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        list(segments(-1, 3, 8))


def test_a_slice_of_a_block_is_the_same_rows_of_the_whole_block() -> None:
    whole, part = Segment(4, 0, 1000, 0), Segment(4, 123, 456, 0)
    np.testing.assert_array_equal(draw_noise(9, whole, 7)[123:456], draw_noise(9, part, 7))
    np.testing.assert_array_equal(draw_normals(9, whole, 4)[123:456], draw_normals(9, part, 4))
    for sub in (Substream.CHARGE, Substream.CHOICE):
        np.testing.assert_array_equal(draw_uniforms(9, whole, sub)[123:456], draw_uniforms(9, part, sub))


def test_blocks_seeds_and_substreams_are_distinct() -> None:
    draws = [generator(seed, block, sub).random(4) for seed in (0, 1) for block in (0, 1) for sub in Substream]
    assert len({tuple(d) for d in draws}) == len(draws)


def test_the_draw_order_is_pinned() -> None:
    """Changing how a block is drawn changes every muon ever served for a seed: this must never happen."""
    segment = Segment(2, 0, 3, 0)
    np.testing.assert_array_equal(
        draw_noise(123, segment, 3)[1], np.array([1.354851245880127, -1.1727246046066284, 2.60390043258667], np.float32)
    )
    np.testing.assert_array_equal(
        draw_normals(123, segment, 4)[0],
        [-0.34004418731831965, 1.0307698407177401, -0.7233316907097622, 2.1166160235074183],
    )
    np.testing.assert_array_equal(
        draw_uniforms(123, segment, Substream.CHARGE), [0.9233029900751525, 0.32157839653869613, 0.2682116714984749]
    )
    np.testing.assert_array_equal(
        draw_uniforms(123, segment, Substream.CHOICE), [0.17208065626173563, 0.019987953474292386, 0.19843047359734867]
    )


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_seeds_outside_64_bits_are_refused(seed: int) -> None:
    with pytest.raises(ValueError, match="seed"):
        generator(seed, 0, Substream.NOISE)
