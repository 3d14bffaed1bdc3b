"""Faults: clients that leave mid-stream, a stream that fails midway, bodies cut short, models that cannot load.

Real uvicorn servers with the tiny real model; the failure mid-stream is the service's own: its engine
is closed under open streams, as at shutdown, so the next block cannot be made. The serve command runs
as a real process on broken model folders.
"""

from __future__ import annotations

import hashlib
import io
import json
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from test_service import Server, _metric, _wait_for_idle

from service.client import MuonClient
from service.samples import SampleError, read_sample

ARROW_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # Arrow IPC end-of-stream marker


# A client that leaves.

LONG = {"plain": ("GET", "/v1/muons", {"n": 5_000_000}, None), "boosted": ("POST", "/v1/muons/boosted", {}, 1_000_000)}


@pytest.mark.parametrize("fmt", ["arrow", "npy", "csv"])
@pytest.mark.parametrize("mode", list(LONG))
def test_a_client_that_leaves_mid_stream_frees_its_slot_within_a_second(
    client: httpx.Client, base_url: str, mode: str, fmt: str
) -> None:
    method, path, params, boosted_n = LONG[mode]
    body = None if boosted_n is None else {"n": boosted_n, "format": fmt, "scale": {"pt": 3}}
    _wait_for_idle(client)
    with (
        httpx.Client(base_url=base_url, timeout=60) as leaving,
        leaving.stream(method, path, params=None if body else {**params, "format": fmt}, json=body) as response,
    ):
        chunks = response.iter_raw()
        next(chunks), next(chunks)
        assert _metric(client, "muongan_active_generations") == 1
        left = time.perf_counter()
    while _metric(client, "muongan_active_generations") > 0:
        assert time.perf_counter() - left < 1.0, "the generation slot was still held 1 s after the client left"
        time.sleep(0.01)
    served = _metric(client, "muongan_muons_served_total")
    time.sleep(0.3)
    assert _metric(client, "muongan_muons_served_total") == served  # nothing more is made for nobody


def test_a_client_that_leaves_while_its_weights_are_summed_frees_its_slot_within_a_second(
    client: httpx.Client, base_url: str
) -> None:
    """A boosted request sums the weights of all its muons before the first byte; leaving then stops that too."""
    _wait_for_idle(client)
    gone = _metric(client, 'muongan_requests_total{method="POST",route="/v1/muons/boosted",status="499"}')
    body = json.dumps({"n": 5_000_000, "format": "npy", "scale": {"pt": 3}}).encode()
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as leaving:
        leaving.sendall(
            b"POST /v1/muons/boosted HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body)
        )
        while _metric(client, "muongan_active_generations") < 1:
            time.sleep(0.01)
        time.sleep(0.2)
        answered, _, _ = select.select([leaving], [], [], 0)
        assert not answered, "the response had started: this test needs a longer weight pass"
    left = time.perf_counter()
    while _metric(client, "muongan_active_generations") > 0:
        assert time.perf_counter() - left < 1.0, "the generation slot was still held 1 s after the client left"
        time.sleep(0.01)
    deadline = time.perf_counter() + 1.0
    while _metric(client, 'muongan_requests_total{method="POST",route="/v1/muons/boosted",status="499"}') == gone:
        assert time.perf_counter() < deadline, "the abandoned request was not counted as 499"
        time.sleep(0.01)


# A stream that fails midway.


def test_a_stream_that_fails_midway_never_looks_complete(tiny_model: Path) -> None:
    """Each streamed format ends without its HTTP terminator; httpx and the client raise instead of ending cleanly."""
    server = Server(tiny_model, max_concurrent=4)
    with ExitStack() as stack:
        url = stack.enter_context(server)
        http = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        streams = {}
        for fmt in ("arrow", "npy", "csv"):
            response = stack.enter_context(http.stream("GET", "/v1/muons", params={"n": 3_000_000, "format": fmt}))
            chunks = response.iter_raw()
            streams[fmt] = (response, chunks, bytearray(next(chunks)))
        muon_stream = stack.enter_context(stack.enter_context(MuonClient(url)).stream(3_000_000))
        blocks = muon_stream.blocks()
        next(blocks)
        server.app.state.service.engine.close()  # as at shutdown: no further block can be made
        for fmt, (response, chunks, received) in streams.items():
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in chunks:
                    received.extend(chunk)
            if fmt == "npy":
                assert len(received) < int(response.headers["content-length"])
            if fmt == "arrow":
                assert not received.endswith(ARROW_END)
        with pytest.raises((httpx.TransportError, pa.ArrowException)):
            list(blocks)


# Bodies cut short, read later (a download saved by a tool that did not check).


def test_truncated_npy_and_arrow_bodies_are_detected_by_their_readers(client: httpx.Client) -> None:
    n = 150_000  # three Arrow record batches (block size 65536)
    npy = client.get("/v1/muons", params={"n": n, "format": "npy"}).content
    for cut in (len(npy) - 1, len(npy) - 32, len(npy) // 2, 200):  # mid-row, at a row boundary, anywhere
        with pytest.raises((ValueError, EOFError)):
            np.load(io.BytesIO(npy[:cut]), allow_pickle=False)
    arrow = client.get("/v1/muons", params={"n": n, "format": "arrow"}).content
    assert arrow.endswith(ARROW_END)
    boundaries, reader = [], pa.BufferReader(arrow)
    with pytest.raises(EOFError):
        while True:
            pa.ipc.read_message(reader)
            boundaries.append(reader.tell())
    assert len(boundaries) == 4  # schema, then three batches
    for cut in boundaries[1:]:  # cut exactly after a batch: pyarrow reads it as a whole stream ...
        table = pa.ipc.open_stream(arrow[:cut]).read_all()
        promised = int(table.schema.metadata[b"n"])
        assert table.num_rows < promised or not arrow[:cut].endswith(ARROW_END)  # ... the metadata tells
    root = client.get("/v1/muons", params={"n": 1000, "format": "root"})
    assert int(root.headers["content-length"]) == len(root.content)
    with pytest.raises(SampleError):
        read_sample(root.content[: len(root.content) // 2], "root")


# A model that cannot load stops `muongan serve` with a clear message naming it.


def _with_sha(folder: Path, name: str) -> None:
    """Record the file's current sha256 in model.json, as an export that wrote a broken file would."""
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(manifest))


def _truncate_generator(folder: Path) -> None:
    onnx = folder / "generator.onnx"
    onnx.write_bytes(onnx.read_bytes()[:2000])
    _with_sha(folder, "generator.onnx")


BROKEN_MODELS: dict[str, tuple[Callable[[Path], object], str]] = {
    "generator missing": (lambda folder: (folder / "generator.onnx").unlink(), "has no generator.onnx"),
    "ONNX truncated, sha256 recorded": (_truncate_generator, "onnxruntime cannot load"),
    "model.json not JSON": (lambda folder: (folder / "model.json").write_text("{not json"), "not a valid manifest"),
    "folder missing": (shutil.rmtree, "is not a model folder"),
}


@pytest.mark.parametrize(("damage", "message"), BROKEN_MODELS.values(), ids=list(BROKEN_MODELS))
def test_serve_refuses_a_broken_model_with_a_clear_message(
    tiny_model: Path, tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    damage(folder)
    command = [sys.executable, "-m", "muongan.cli", "serve", "--model", str(folder), "--port", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("muongan serve: ") and str(folder) in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
