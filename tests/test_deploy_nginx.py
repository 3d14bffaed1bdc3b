"""The scale-out topology of docker-compose.yml without containers: two replicas behind a real nginx.

Two ``muongan serve`` processes on loopback ports, the tiny real model, and Debian's nginx running
``deploy/nginx/proxy.conf`` (included verbatim, so the production proxy settings are what is tested) with
a generated upstream, pid, log and temp paths in a temporary folder. Slices of one seed fetched through
nginx must land on both replicas and reassemble into exactly the muons of one direct request: that is
what lets thousands of batch jobs share one stream over any number of replicas (DESIGN section 5).

nginx comes from ``make nginx`` (run by ``make test``); the tests skip only where it is not installed.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

PROXY_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "proxy.conf"
SEED = 20261123
CUTS = [0, 1234, 5000, 7777, 10_000]  # uneven slices that straddle generation blocks
STARTUP_S = 90


def _nginx() -> str:
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        pytest.skip("nginx is not installed and could not be (`make nginx` installs Debian's package as root)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_answers(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} never answered (exit status {process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream muongan {{
        least_conn;
{servers}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {proxy_conf};
    }}
}}
"""


@dataclass(frozen=True)
class Topology:
    balancer: str
    replicas: list[str]


@pytest.fixture(scope="module")
def topology(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    nginx = _nginx()
    root = tmp_path_factory.mktemp("nginx")
    serve = Path(sys.executable).parent / "muongan"
    env = {**os.environ, "MUONGAN_DRAW_THREADS": "1", "MUONGAN_INFERENCE_THREADS": "1"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        replicas = []
        for index in range(2):
            port, log = _free_port(), root / f"replica{index}.log"
            command = [str(serve), "serve", "--model", str(tiny_model), "--host", "127.0.0.1", "--port", str(port)]
            with log.open("wb") as out:
                processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            replicas.append((f"http://127.0.0.1:{port}", log))
        for (url, log), process in zip(replicas, processes, strict=True):
            _wait_until_answers(f"{url}/readyz", process, log)

        port = _free_port()
        servers = "\n".join(f"        server {url.removeprefix('http://')};" for url, _ in replicas)
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, servers=servers, port=port, proxy_conf=PROXY_CONF))
        error_log = root / "error.log"
        command = [nginx, "-p", str(root), "-e", str(error_log), "-c", str(conf)]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_until_answers(f"http://127.0.0.1:{port}/nginx-health", processes[-1], error_log)
        yield Topology(f"http://127.0.0.1:{port}", [url for url, _ in replicas])
    finally:
        _stop(processes)


def _muons_served(replica: str, fmt: str) -> float:
    """This replica's muongan_muons_served counter for plain muons in ``fmt``: who really generated them."""
    text = httpx.get(f"{replica}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "muongan_muons_served_total" and sample.labels == {"mode": "plain", "format": fmt}:
                return sample.value
    return 0.0


def _get(client: httpx.Client, url: str, start: int, n: int, fmt: str) -> httpx.Response:
    response = client.get(f"{url}/v1/muons", params={"n": n, "seed": SEED, "start": start, "format": fmt})
    assert response.status_code == 200, response.text
    assert (response.headers["x-seed"], response.headers["x-start"]) == (str(SEED), str(start))
    assert response.headers["x-muon-count"] == str(n)
    return response


def _slices_through_nginx(topology: Topology, fmt: str) -> tuple[list[httpx.Response], list[float]]:
    """Every slice of CUTS through the balancer, and how many muons each replica generated meanwhile."""
    before = [_muons_served(replica, fmt) for replica in topology.replicas]
    with httpx.Client(timeout=60) as client:
        parts = [_get(client, topology.balancer, a, b - a, fmt) for a, b in pairwise(CUTS)]
    served = [_muons_served(replica, fmt) - was for replica, was in zip(topology.replicas, before, strict=True)]
    return parts, served


def test_npy_slices_from_both_replicas_reassemble_the_direct_bytes(topology: Topology) -> None:
    with httpx.Client(timeout=60) as client:
        direct = _get(client, topology.replicas[0], 0, CUTS[-1], "npy")
    parts, served = _slices_through_nginx(topology, "npy")

    assert all(count > 0 for count in served), f"one replica served nothing: {served}"
    assert sum(served) == CUTS[-1]
    assert len({part.headers["x-model-sha256"] for part in [direct, *parts]}) == 1

    whole = np.load(io.BytesIO(direct.content), allow_pickle=False)
    pieces = [np.load(io.BytesIO(part.content), allow_pickle=False) for part in parts]
    assert whole.shape == (CUTS[-1], 8) and whole.dtype == np.float32
    assert [len(piece) for piece in pieces] == np.diff(CUTS).tolist()
    assert b"".join(piece.tobytes() for piece in pieces) == whole.tobytes()


def test_arrow_streams_pass_nginx_unchanged_and_slices_rejoin(topology: Topology) -> None:
    with httpx.Client(timeout=60) as client:
        direct = _get(client, topology.replicas[1], 0, CUTS[-1], "arrow")
        proxied = _get(client, topology.balancer, 0, CUTS[-1], "arrow")
    # Streamed (no length known up front) and passed on byte for byte.
    assert "content-length" not in proxied.headers
    assert proxied.content == direct.content

    parts, served = _slices_through_nginx(topology, "arrow")
    assert all(count > 0 for count in served), f"one replica served nothing: {served}"

    whole = pa.ipc.open_stream(direct.content).read_all()
    pieces = [pa.ipc.open_stream(part.content).read_all() for part in parts]
    rejoined = pa.concat_tables(pieces).combine_chunks()
    assert rejoined.num_rows == CUTS[-1]
    assert rejoined.replace_schema_metadata(None).equals(whole.combine_chunks().replace_schema_metadata(None))
