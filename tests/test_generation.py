"""The in-process pipeline on the tiny real model: slicing, weight sums, caching, chunking and stopping."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from service.contract.bounds import MAX_AUX
from service.engine.generation import Engine, Request
from service.engine.model import Model
from service.engine.streams import Segment


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Engine:
    return Engine(Model.load(tiny_model), draw_threads=2)


def test_rows_do_not_depend_on_how_onnxruntime_calls_are_cut(tiny_model: Path, engine: Engine) -> None:
    request = Request(seed=3, start=100, n=3000, source=engine.plain_source())
    reference, _ = engine.generate(request)
    for rows in (1, 7, 1000):
        other = Engine(Model.load(tiny_model, rows_per_call=rows), draw_threads=1)
        np.testing.assert_array_equal(other.generate(request)[0], reference)
        other.close()


def test_single_rows_equal_the_rows_of_a_block(engine: Engine) -> None:
    block = engine.block_size
    whole, _ = engine.generate(Request(9, block - 5, 10, engine.boosted_source([2, 1, 3, 1])))
    for i in (0, 4, 5, 9):
        row, _ = engine.generate(Request(9, block - 5 + i, 1, engine.boosted_source([2, 1, 3, 1])))
        np.testing.assert_array_equal(row[0], whole[i])


@pytest.mark.parametrize("mode", ["boosted", "enhanced"])
def test_weight_sums_are_those_of_the_rows_sent_with_or_without_the_cache(engine: Engine, mode: str) -> None:
    seeds, _ = engine.generate(Request(1, 0, 300, engine.plain_source()))
    source = engine.boosted_source([1, 2, 2, 1]) if mode == "boosted" else engine.seed_source(seeds)
    request = Request(seed=4, start=engine.block_size - 1000, n=3000, source=source)
    cached = engine.prepare(request)
    uncached = engine.prepare(request, cache_bytes=0)
    assert cached.cache and not uncached.cache
    sent = [np.concatenate(list(engine.blocks(prepared))) for prepared in (cached, uncached)]
    np.testing.assert_array_equal(sent[0], sent[1])
    weight = sent[0][:, -1].astype(np.float64)
    assert cached.weight_sum == uncached.weight_sum == pytest.approx(weight.sum(), rel=1e-12)
    assert cached.effective_sample_size == pytest.approx(weight.sum() ** 2 / (weight @ weight), rel=1e-12)


def test_custom_aux_rows_follow_the_request_rows(engine: Engine) -> None:
    aux = np.zeros((200, 4), np.float32)
    aux[100:, 2] = 4.0  # second half: very rare transverse momentum
    muons, prepared = engine.generate(Request(2, 50, 200, engine.custom_source(aux)))
    pt = np.hypot(muons[:, 4], muons[:, 5])
    assert np.median(pt[100:]) > np.median(pt[:100])
    assert prepared.weight_sum == 200 and np.all(muons[:, -1] == 1)


def test_pdg_is_minus_13_times_the_charge_fed_in(engine: Engine) -> None:
    muons, _ = engine.generate(Request(6, 0, 20_000, engine.plain_source()))
    assert set(np.unique(muons[:, 0])) == {13.0, -13.0}


def test_a_stop_ends_the_stream_after_the_current_block(engine: Engine) -> None:
    prepared = engine.prepare(Request(5, 0, 50 * engine.block_size, engine.plain_source()))
    stop = threading.Event()
    blocks = engine.blocks(prepared, stop)
    next(blocks)
    stop.set()
    assert list(blocks) == []


def test_the_generator_is_fed_aux_no_larger_than_max_aux(engine: Engine) -> None:
    """Boosted scale 10 draws aux up to ~60; the generator sees them clipped, the weights are of the draw."""
    source = engine.boosted_source([10.0] * 4)
    boosted, _ = engine.generate(Request(3, 0, 5000, source))
    drawn = source.draw(3, Segment(0, 0, 5000, 0))
    assert drawn.aux.max() > 2 * MAX_AUX
    clipped, _ = engine.generate(Request(3, 0, 5000, engine.custom_source(np.minimum(drawn.aux, MAX_AUX))))
    np.testing.assert_array_equal(boosted[:, :7], clipped[:, :7])
    np.testing.assert_array_equal(boosted[:, 7], drawn.weight)
