"""service.client over a real uvicorn server on a loopback port, checked against the in-process engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.client import MuonClient, MuonServiceError
from service.contract.modes import Boosted, Custom, Enhanced, Mode, Plain, engine_source
from service.contract.muons import COLUMNS
from service.engine.generation import Engine, Request
from service.engine.model import Model
from service.http import responses
from service.samples import read_sample

# Crosses the tiny model's block boundary (65,536), so two blocks of the stream are involved.
START, N = 65_000, 1_200


@pytest.fixture
def client(base_url: str) -> Iterator[MuonClient]:
    with MuonClient(base_url) as client:
        yield client


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[Engine]:
    engine = Engine(Model.load(tiny_model, "cpu"), draw_threads=2)
    yield engine
    engine.close()


def in_process(engine: Engine, mode: Mode, n: int, seed: int, start: int) -> tuple[np.ndarray, dict[str, str]]:
    """What `muongan generate --model` makes for the same request: muons and metadata."""
    source, settings = engine_source(engine, mode)
    muons, prepared = engine.generate(Request(seed, start, n, source))
    return muons, responses.describe(engine, prepared, mode.name, settings)


def test_plain_muons_equal_the_in_process_engine_and_headers_say_what_they_are(
    client: MuonClient, engine: Engine
) -> None:
    muons, info = client.muons(N, seed=4, start=START)
    expected, _ = in_process(engine, Plain(), N, 4, START)
    assert muons.dtype == np.float32 and muons.shape == (N, len(COLUMNS))
    np.testing.assert_array_equal(muons, expected)
    assert (info.count, info.seed, info.start) == (N, 4, START)
    assert info.model_sha256 == engine.model.sha256
    assert info.equivalent_pot == pytest.approx(N / engine.manifest.muons_per_pot, rel=1e-12)
    assert info.effective_sample_size is None


def test_stream_gives_one_record_batch_per_block_segment_and_the_metadata(client: MuonClient) -> None:
    with client.stream(N, seed=4, start=START) as stream:
        metadata = stream.metadata
        sizes = [batch.num_rows for batch in stream.batches()]
    assert sizes == [65_536 - START, N - (65_536 - START)]
    assert {k: metadata[k] for k in ("seed", "start", "n", "mode")} == {
        "seed": "4",
        "start": str(START),
        "n": str(N),
        "mode": "plain",
    }
    table = client.table(10, seed=4, start=START)
    assert table.column_names == list(COLUMNS) and table.num_rows == 10
    assert table.schema.metadata[b"model_sha256"] == metadata["model_sha256"].encode()


@pytest.fixture(scope="module")
def seed_muons(engine: Engine) -> np.ndarray:
    muons, _ = in_process(engine, Plain(), 500, 11, 0)
    return muons[np.argsort(np.hypot(muons[:, 4], muons[:, 5]))[-50:]]  # the 50 highest-pT muons


@pytest.mark.parametrize("name", ["boosted", "custom", "enhanced"])
def test_each_mode_over_http_equals_the_same_mode_in_process(
    client: MuonClient, engine: Engine, seed_muons: np.ndarray, name: str
) -> None:
    aux = np.random.default_rng(0).exponential(1.0, (300, 4))
    mode: Mode = {
        "boosted": Boosted({"pt": 3.0, "xy": 1.5}),
        "custom": Custom(aux),
        "enhanced": Enhanced(seed_muons, plain_fraction=0.2),
    }[name]
    n = 300
    with client.stream(n, seed=9, start=START, mode=mode) as stream:
        metadata, info = stream.metadata, stream.info
        muons = np.concatenate(list(stream.blocks()))
    expected, expected_metadata = in_process(engine, mode, n, 9, START)
    np.testing.assert_array_equal(muons, expected)
    assert metadata == expected_metadata
    assert info.count == n and metadata["mode"] == name
    if name == "custom":
        assert info.effective_sample_size is None and np.all(muons[:, -1] == 1)
    else:
        assert info.effective_sample_size is not None and 1 < info.effective_sample_size < n
        assert np.ptp(muons[:, -1]) > 0


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".arrow", ".root"])
def test_save_streams_into_a_complete_file_with_the_metadata(client: MuonClient, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"shard{suffix}"
    calls: list[int] = []
    info, metadata = client.save(path, N, seed=4, start=START, progress=calls.append)
    expected, _ = client.muons(N, seed=4, start=START)
    sample = read_sample(path)
    if suffix == ".root":  # cm -> float32 m -> cm: within an ulp
        np.testing.assert_allclose(sample.muons, expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(sample.muons, expected)
    assert sample.metadata["model_sha256"] == info.model_sha256 == metadata["model_sha256"]
    assert float(sample.metadata["equivalent_pot"]) == info.equivalent_pot
    assert sum(calls) == N and len(calls) == 2
    sidecar = [f"{path.name}.json"] if suffix == ".npy" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, *sidecar])


def test_server_errors_raise_with_the_json_detail(client: MuonClient, tmp_path: Path) -> None:
    with pytest.raises(MuonServiceError) as raised:
        client.muons(-1)
    assert raised.value.status_code == 422
    assert "n: Input should be greater than or equal to 0" in str(raised.value)
    with pytest.raises(MuonServiceError, match="exceeds this server's limit") as raised:
        client.save(tmp_path / "big.npy", 10**8)
    assert raised.value.status_code == 422 and "limit" in raised.value.detail
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a partial file


def test_mode_mistakes_are_caught_before_sending(client: MuonClient) -> None:
    with pytest.raises(ValueError, match="unknown aux group"):
        Boosted({"energy": 2.0})
    with pytest.raises(ValueError, match=r"in \[1, 10\]"):
        Boosted({"pt": 0.5})
    with pytest.raises(ValueError, match="one muon per aux row"):
        client.muons(5, mode=Custom(np.ones((3, 4))))
    with pytest.raises(ValueError, match="finite, >= 0"):
        Custom(np.full((3, 4), -1.0))


def test_a_busy_server_is_waited_out_or_reported(base_url: str) -> None:
    with MuonClient(base_url, busy_retries=0) as impatient, MuonClient(base_url) as patient:
        # The test server allows two generations at once; two open streams hold both slots.
        with impatient.stream(10**6, seed=1), impatient.stream(10**6, seed=2):
            with pytest.raises(MuonServiceError) as raised:
                impatient.muons(10)
            assert raised.value.status_code == 429 and raised.value.retry_after is not None
        muons, _ = patient.muons(10)  # slots free again once the streams are closed
        assert len(muons) == 10


def test_api_key_goes_out_as_a_bearer_token(base_url: str) -> None:
    with MuonClient(base_url, api_key="s3cret") as client, client.stream(1) as stream:
        assert stream.response.request.headers["authorization"] == "Bearer s3cret"
    with MuonClient(base_url) as client, client.stream(1) as stream:
        assert "authorization" not in stream.response.request.headers
