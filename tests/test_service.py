"""The HTTP service end to end: a real uvicorn server on a loopback port, the tiny real model, httpx.

Bodies are parsed back with each format's own library (pyarrow, numpy, uproot).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import uproot
import uvicorn

from service.contract.manifest import Manifest
from service.contract.muons import COLUMNS
from service.http.app import create_app
from service.http.settings import Settings
from service.samples.root import TREE

LIMITS = {
    "max_n": 5_000_000,
    "max_root_n": 20_000,
    "max_upload_bytes": 300_000,
    "max_seeds": 5_000,
    "max_enhanced_work": 10**8,
    "max_concurrent": 2,
    "admission_wait_s": 0.5,
    "draw_threads": 2,
}


class Server:
    """uvicorn serving the app in a background thread, on a port the OS picks."""

    def __init__(self, model_dir: Path, **settings: object) -> None:
        """``settings`` override :data:`LIMITS` and the defaults (``api_key``, ``cors_origins``, ...)."""
        self.app = create_app(Settings(model_dir=model_dir, **{**LIMITS, **settings}))  # type: ignore[arg-type]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def manifest(tiny_model: Path) -> Manifest:
    return Manifest.load(tiny_model)


def muons_from(response: httpx.Response, fmt: str = "npy") -> np.ndarray:
    """The (n, 8) float32 body of a response, read by the format's own library."""
    assert response.status_code == 200, response.text
    if fmt == "npy":
        return np.load(io.BytesIO(response.content), allow_pickle=False)
    if fmt == "arrow":
        table = pa.ipc.open_stream(response.content).read_all()
        return np.column_stack([table[c].to_numpy() for c in COLUMNS]).reshape(-1, len(COLUMNS))
    if fmt == "csv":
        options = pa_csv.ConvertOptions(column_types={c: pa.float32() for c in COLUMNS})
        table = pa_csv.read_csv(io.BytesIO(response.content), convert_options=options)
        return np.column_stack([table[c].to_numpy() for c in COLUMNS])
    with uproot.open(io.BytesIO(response.content)) as file:
        branches = file[TREE].arrays(library="np")
    rows = slice(None, -1)  # FairShip's all-zero last row
    columns = ["id", "x", "y", "z", "px", "py", "pz", "w"]
    muons = np.column_stack([branches[name][rows] for name in columns]).astype(np.float64)
    muons[:, 1:3] *= 100
    muons[:, 3] = muons[:, 3] * 100 - 2084.5
    return muons


def plain(client: httpx.Client, n: int, seed: int = 1, start: int = 0, fmt: str = "npy") -> httpx.Response:
    return client.get("/v1/muons", params={"n": n, "seed": seed, "start": start, "format": fmt})


def pt_of(muons: np.ndarray) -> np.ndarray:
    return np.hypot(muons[:, 4], muons[:, 5])


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# Formats and headers.


@pytest.mark.parametrize("fmt", ["arrow", "npy", "csv", "root"])
def test_each_format_parses_back_with_the_requested_rows(
    client: httpx.Client, tiny_model: Path, manifest: Manifest, fmt: str
) -> None:
    response = plain(client, 1000, seed=5, start=10, fmt=fmt)
    muons = muons_from(response, fmt)
    assert muons.shape == (1000, 8)
    reference = muons_from(plain(client, 1000, seed=5, start=10))
    if fmt == "root":  # metres in FairShip's frame, float32
        np.testing.assert_allclose(muons, reference, rtol=1e-6, atol=2e-4)
    else:
        np.testing.assert_array_equal(muons, reference)
    assert set(np.unique(muons[:, 0])) <= {13.0, -13.0}
    assert np.all(muons[:, -1] == 1)
    media = {"arrow": "application/vnd.apache.arrow.stream", "npy": "application/x-npy", "csv": "text/csv"}
    assert response.headers["content-type"].startswith(media.get(fmt, "application/x-root"))
    assert response.headers["X-Muon-Count"] == "1000"
    assert response.headers["X-Seed"] == "5" and response.headers["X-Start"] == "10"
    generator_sha = hashlib.sha256((tiny_model / "generator.onnx").read_bytes()).hexdigest()
    assert response.headers["X-Model-Sha256"] == generator_sha
    assert float(response.headers["X-Equivalent-POT"]) == pytest.approx(1000 / manifest.muons_per_pot, rel=1e-12)


def test_arrow_schema_carries_the_provenance(client: httpx.Client, manifest: Manifest) -> None:
    reader = pa.ipc.open_stream(plain(client, 100, seed=3, start=7, fmt="arrow").content)
    metadata = {k.decode(): v.decode() for k, v in reader.schema.metadata.items()}
    assert reader.schema.names == list(COLUMNS)
    assert metadata["seed"] == "3" and metadata["start"] == "7" and metadata["n"] == "100"
    assert float(metadata["equivalent_pot"]) == pytest.approx(100 / manifest.muons_per_pot)
    assert metadata["model_sha256"] == manifest.files["generator.onnx"]


def test_npy_declares_its_length_and_csv_has_a_header(client: httpx.Client) -> None:
    response = plain(client, 1234)
    assert int(response.headers["content-length"]) == len(response.content)
    assert plain(client, 3, fmt="csv").text.splitlines()[0] == ",".join(COLUMNS)


def test_zero_muons_is_an_empty_valid_body(client: httpx.Client) -> None:
    for fmt in ("arrow", "npy", "csv"):
        assert muons_from(plain(client, 0, fmt=fmt), fmt).shape[0] == 0


# Reproducibility and stream addressing.


def test_same_seed_and_slice_give_identical_bytes(client: httpx.Client) -> None:
    first, second = (plain(client, 3000, seed=11, start=5, fmt="arrow") for _ in range(2))
    assert first.content == second.content


def test_a_range_is_its_two_halves_across_a_block_boundary(client: httpx.Client, manifest: Manifest) -> None:
    start, half = manifest.block_size - 700, 1000  # [start, start + 2000) spans two blocks
    whole = muons_from(plain(client, 2 * half, seed=2, start=start))
    first = muons_from(plain(client, half, seed=2, start=start))
    second = muons_from(plain(client, half, seed=2, start=start + half))
    np.testing.assert_array_equal(whole, np.concatenate([first, second]))
    np.testing.assert_array_equal(whole[10:20], muons_from(plain(client, 10, seed=2, start=start + 10)))


def test_different_seeds_differ(client: httpx.Client) -> None:
    a, b = (muons_from(plain(client, 500, seed=seed)) for seed in (1, 2))
    assert not np.any(np.all(a[:, 1:7] == b[:, 1:7], axis=1))


def test_charge_follows_the_training_fraction(client: httpx.Client, manifest: Manifest) -> None:
    muons = muons_from(plain(client, 40_000, seed=4))
    fraction = np.mean(muons[:, 0] == -13)
    assert fraction == pytest.approx(manifest.mu_plus_fraction, abs=4 * np.sqrt(0.25 / len(muons)))


# Boosted, custom and enhanced.


def test_boosted_weights_reproduce_plain_and_fill_the_tail(client: httpx.Client, manifest: Manifest) -> None:
    n = 100_000
    reference = muons_from(plain(client, n, seed=21))
    cut = np.quantile(pt_of(reference), 0.99)
    body = {"n": n, "seed": 22, "format": "npy", "scale": {"pt": 3.0}}
    response = client.post("/v1/muons/boosted", json=body)
    boosted = muons_from(response)
    weight = boosted[:, -1].astype(np.float64)
    assert np.all(weight > 0)
    assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(n))
    tail = pt_of(boosted) > cut
    rate, error = weight[tail].sum() / n, np.sqrt((weight[tail] ** 2).sum()) / n
    plain_rate = np.mean(pt_of(reference) > cut)
    assert rate == pytest.approx(plain_rate, abs=4 * np.hypot(error, np.sqrt(plain_rate / n)))
    factor = tail.mean() / plain_rate
    print(f"boosted pt x3: {factor:.1f}x more muons above pT {cut:.2f} GeV per muon generated")
    assert factor > 3
    assert float(response.headers["X-Equivalent-POT"]) == pytest.approx(weight.sum() / manifest.muons_per_pot)
    assert float(response.headers["X-Effective-Sample-Size"]) == pytest.approx(weight.sum() ** 2 / (weight @ weight))


def test_boosted_slices_are_rows_of_the_longer_request(client: httpx.Client) -> None:
    def boosted(start: int, n: int) -> np.ndarray:
        body = {"n": n, "seed": 8, "start": start, "format": "npy", "scale": {"xy": 2, "pz": 1.5}}
        return muons_from(client.post("/v1/muons/boosted", json=body))

    np.testing.assert_array_equal(boosted(100, 50), boosted(0, 300)[100:150])


def test_custom_aux_gives_one_muon_per_row_with_unit_weight(client: httpx.Client) -> None:
    aux = np.tile([[0.5, 0.5, 3.0, 0.5]], (2000, 1)).astype(np.float32)
    response = client.post(
        "/v1/muons/custom",
        params={"seed": 3, "format": "npy"},
        content=npy_bytes(aux),
        headers={"content-type": "application/x-npy"},
    )
    muons = muons_from(response)
    assert muons.shape == (2000, 8) and np.all(muons[:, -1] == 1)
    low = muons_from(
        client.post("/v1/muons/custom", params={"seed": 3, "format": "npy"}, content=npy_bytes(aux * [1, 1, 0, 1]))
    )
    assert np.median(pt_of(muons)) > np.median(pt_of(low))  # the generator honours its pt aux
    table = pa.table({name: aux[:, i] for i, name in enumerate(["xy", "z", "pt", "pz"])})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    from_arrow = client.post("/v1/muons/custom", params={"seed": 3, "format": "npy"}, content=sink.getvalue())
    np.testing.assert_array_equal(muons_from(from_arrow), muons)


@pytest.fixture(scope="module")
def high_pt_seeds(base_url: str) -> tuple[np.ndarray, float]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        reference = muons_from(plain(client, 40_000, seed=31))
    cut = float(np.quantile(pt_of(reference), 0.95))
    return reference[pt_of(reference) > cut], cut


def test_enhanced_weights_are_importance_weights_with_an_ess(
    client: httpx.Client, manifest: Manifest, high_pt_seeds: tuple[np.ndarray, float]
) -> None:
    seeds, _ = high_pt_seeds
    params = {"n": 20_000, "seed": 5, "format": "npy", "plain_fraction": 0.1}
    response = client.post("/v1/muons/enhanced", params=params, content=npy_bytes(seeds[:, :7]))
    weight = muons_from(response)[:, -1].astype(np.float64)
    assert np.all(weight > 0) and weight.max() <= 10 * (1 + 1e-6)  # the plain share caps w at 1/0.1
    assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(len(weight)))
    ess = float(response.headers["X-Effective-Sample-Size"])
    assert ess == pytest.approx(weight.sum() ** 2 / (weight @ weight), rel=1e-5) and 1 <= ess <= len(weight)
    assert float(response.headers["X-Equivalent-POT"]) == pytest.approx(weight.sum() / manifest.muons_per_pot)
    again = client.post("/v1/muons/enhanced", params=params, content=npy_bytes(seeds[:, :7]))
    assert again.content == response.content
    tail = client.post("/v1/muons/enhanced", params={**params, "n": 50, "start": 19_950}, content=npy_bytes(seeds))
    np.testing.assert_array_equal(muons_from(tail), muons_from(response)[-50:])


@pytest.mark.parametrize("fmt", ["parquet", "root"])
def test_enhanced_takes_seed_files(
    client: httpx.Client, tmp_path: Path, high_pt_seeds: tuple[np.ndarray, float], fmt: str
) -> None:
    from service.samples import Sample, write_sample

    seeds, _ = high_pt_seeds
    path = tmp_path / f"seeds.{fmt}"
    write_sample(Sample(seeds[:500]), path)
    response = client.post("/v1/muons/enhanced", params={"n": 100, "format": "npy"}, content=path.read_bytes())
    assert muons_from(response).shape == (100, 8)
    assert response.headers["X-Effective-Sample-Size"]


# Limits and bad input (the catalogue of bad requests is tests/test_reliability_inputs.py).


def test_an_upload_over_the_limit_is_refused_while_it_arrives(client: httpx.Client) -> None:
    """No Content-Length: the server counts bytes as they come and stops at the limit."""

    def chunks() -> Iterator[bytes]:
        yield npy_bytes(np.ones((5, 4)))[:128]
        for _ in range(100):
            yield b"\x00" * 10_000

    response = client.post("/v1/muons/custom", content=chunks())
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_busy_server_answers_429_and_frees_slots_when_streams_end(client: httpx.Client, base_url: str) -> None:
    huge = {"n": 5_000_000, "format": "npy"}
    _wait_for_idle(client)  # slots of earlier responses are freed just after their last byte
    with (
        httpx.Client(base_url=base_url, timeout=60) as a,
        httpx.Client(base_url=base_url, timeout=60) as b,
        a.stream("GET", "/v1/muons", params=huge) as first,
        b.stream("GET", "/v1/muons", params=huge) as second,
    ):
        assert first.status_code == second.status_code == 200
        began = time.perf_counter()
        busy = plain(client, 10)
        assert busy.status_code == 429 and busy.headers["Retry-After"]
        assert "slots are busy (waited 0.5 s in line)" in busy.json()["detail"]
        assert time.perf_counter() - began >= 0.5
    _wait_for_idle(client)
    assert plain(client, 10).status_code == 200


def test_a_request_finding_every_slot_busy_waits_in_line_and_is_served_when_one_frees(tiny_model: Path) -> None:
    with (
        Server(tiny_model, max_concurrent=1, admission_wait_s=30) as url,
        httpx.Client(base_url=url, timeout=60) as client,
        httpx.Client(base_url=url, timeout=60) as first,
        httpx.Client(base_url=url, timeout=60) as second,
    ):
        answers: list[httpx.Response] = []
        with first.stream("GET", "/v1/muons", params={"n": 5_000_000, "format": "npy"}) as holder:
            chunks = holder.iter_raw()  # kept: a dropped iterator closes the response
            next(chunks)
            waiting = threading.Thread(target=lambda: answers.append(plain(second, 10)))
            waiting.start()
            deadline = time.monotonic() + 5
            while _metric(client, "muongan_waiting_requests") < 1:
                assert time.monotonic() < deadline, "the second request never joined the line"
                time.sleep(0.01)
            assert not answers  # still in line while the first stream holds the only slot
        waiting.join(timeout=10)
        assert [answer.status_code for answer in answers] == [200]
        assert len(muons_from(answers[0])) == 10
        assert _metric(client, "muongan_waiting_requests") == 0


def _metric(client: httpx.Client, name: str) -> float:
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def _wait_for_idle(client: httpx.Client) -> None:
    deadline = time.monotonic() + 5
    while _metric(client, "muongan_active_generations") > 0:
        assert time.monotonic() < deadline, "generation slots were not released"
        time.sleep(0.05)


def test_a_client_that_goes_away_stops_the_generation(client: httpx.Client, base_url: str) -> None:
    _wait_for_idle(client)
    before = _metric(client, "muongan_muons_served_total")
    with (
        httpx.Client(base_url=base_url, timeout=60) as other,
        other.stream("GET", "/v1/muons", params={"n": 5_000_000, "format": "arrow"}) as response,
    ):
        next(response.iter_bytes())
    _wait_for_idle(client)
    served = _metric(client, "muongan_muons_served_total")
    time.sleep(0.5)
    assert _metric(client, "muongan_muons_served_total") == served
    assert served - before < 4_000_000  # far from the 5e6 asked for


# Operations.


def test_metrics_count_requests_muons_and_bytes(client: httpx.Client) -> None:
    before = _metric(client, 'muongan_muons_served_total{format="csv",mode="plain"}')
    response = plain(client, 777, fmt="csv")
    assert response.status_code == 200
    assert _metric(client, 'muongan_muons_served_total{format="csv",mode="plain"}') == before + 777
    text = client.get("/metrics").text
    assert 'muongan_requests_total{method="GET",route="/v1/muons",status="200"}' in text
    assert 'muongan_request_seconds_bucket{le="0.5",route="/v1/muons"}' in text
    assert 'muongan_response_bytes_total{format="csv"}' in text


def test_model_health_and_readiness(client: httpx.Client, manifest: Manifest) -> None:
    described = client.get("/v1/model").json()
    assert described["name"] == manifest.name and described["noise_dim"] == manifest.noise_dim
    assert described["serving"]["provider"] == "CPUExecutionProvider"
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["provider"] == "CPUExecutionProvider"


def test_openapi_documents_every_parameter(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/muons", "/v1/muons/custom", "/v1/muons/enhanced"):
        operation = next(iter(spec["paths"][path].values()))
        assert all(parameter.get("description") for parameter in operation.get("parameters", [])), path
        assert "X-Equivalent-POT" in operation["responses"]["200"]["headers"]
    for name in ("Boosted", "Scale"):
        properties = spec["components"]["schemas"][name]["properties"]
        assert all(field.get("description") for field in properties.values()), name
    assert client.get("/docs").status_code == 200


def test_parquet_upload_of_aux_is_refused_with_the_formats_accepted(client: httpx.Client) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"xy": [1.0], "z": [1.0], "pt": [1.0], "pz": [1.0]}), sink)
    response = client.post("/v1/muons/custom", content=sink.getvalue())
    detail = response.json()["detail"]
    assert response.status_code == 415 and "send npy (application/x-npy), arrow (" in detail, detail
