"""The serving image, built with podman (`make image`) and run for real, checked through its published port.

The container serves the default model baked into it; its muons must be the bytes `muongan generate --model
models/default` makes in this process's environment (the same onnxruntime build, pinned by pyproject.toml).
The rest is what a deployment relies on: ready within a minute, an unprivileged process that cannot write its
model, a passing HEALTHCHECK, and a SIGTERM that ends the process in seconds while cutting an open stream so
that the client sees an error instead of a short file.

The helpers here (podman, built, running) serve the other container tests too. `make test` builds the images
first; each test's `make` then only confirms they are up to date. Without podman the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.samples import read_sample

ROOT = Path(__file__).resolve().parent.parent
MUONGAN = str(Path(sys.executable).parent / "muongan")
# The project's podman settings (runc, ulimits this host grants), as the Makefile uses them.
ENGINE_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}
# The Makefile's default image names, by the target that builds each.
IMAGES = {
    "image": "localhost/muongan:latest",
    "image-train": "localhost/muongan-train:latest",
    "image-nginx": "localhost/muongan-nginx:latest",
    "image-gpu": "localhost/muongan-gpu:latest",
}
READY_S = 60
SEED, START, N = 20261123, 3_000_000, 100_000


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One podman command with the project's settings; fails the test with podman's own words."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, env=ENGINE_ENV, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr[-3000:]}")
    return result


def built(target: str) -> str:
    """The image the Makefile target builds, brought up to date (all layers cached unless files changed)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (`make podman` installs it, with runc and debootstrap, as root)")
    result = subprocess.run(["make", "-s", target], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"make {target} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return IMAGES[target]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, container: str, within_s: float = READY_S) -> float:
    """Seconds until ``url`` answers 200; fails with the container's log if it does not within ``within_s``."""
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    log = podman("logs", container, check=False)
    pytest.fail(f"{url} not ready within {within_s} s:\n{(log.stdout + log.stderr)[-3000:]}")


@contextmanager
def running(image: str, name: str, *args: str) -> Iterator[str]:
    """The serving image as a detached container with port 8000 published on loopback; yields its URL."""
    port = free_port()
    podman("rm", "-f", "-t", "0", name, check=False)
    podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", *args, image)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def generate(out: Path, *source: str) -> None:
    args = ["generate", *source, "--seed", str(SEED), "--start", str(START), "--n", str(N), "--no-progress"]
    result = subprocess.run([MUONGAN, *args, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def image() -> str:
    return built("image")


@pytest.fixture(scope="module")
def served(image: str) -> Iterator[tuple[str, str, float]]:
    """The running container's name and URL, and how long it took to become ready."""
    name = f"muongan-test-{os.getpid()}"
    with running(image, name) as url:
        yield name, url, wait_ready(f"{url}/readyz", name)


@pytest.mark.parametrize("suffix", ["arrow", "root"])
def test_ready_within_a_minute_serving_the_in_process_bytes(
    served: tuple[str, str, float], tmp_path: Path, suffix: str
) -> None:
    _, url, ready_s = served
    assert ready_s < READY_S
    readiness = httpx.get(f"{url}/readyz", timeout=5).json()
    assert readiness["status"] == "ready" and readiness["provider"] == "CPUExecutionProvider"

    generate(tmp_path / f"local.{suffix}", "--model", str(ROOT / "models" / "default"))
    generate(tmp_path / f"served.{suffix}", "--url", url)
    local = (tmp_path / f"local.{suffix}").read_bytes()
    assert len(local) > N * 8 * 4 // 2  # a real file of N muons, not an empty shell
    assert (tmp_path / f"served.{suffix}").read_bytes() == local

    # The body as the service sends it, no client in between, read back by its own library.
    params: dict[str, str | int] = {"n": N, "seed": SEED, "start": START, "format": suffix}
    body = httpx.get(f"{url}/v1/muons", params=params, timeout=120)
    assert body.status_code == 200 and body.headers["x-muon-count"] == str(N)
    (tmp_path / f"body.{suffix}").write_bytes(body.content)
    muons = read_sample(tmp_path / f"body.{suffix}").muons
    assert muons.shape == (N, 8)
    assert muons.tobytes() == read_sample(tmp_path / f"local.{suffix}").muons.tobytes()


def test_runs_unprivileged_and_cannot_write_its_model(served: tuple[str, str, float]) -> None:
    name = served[0]
    # The container's processes seen from the host (no user namespace: ids are the host's): tini and the service.
    init = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    (service,) = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    assert Path(f"/proc/{service}/cmdline").read_bytes().split(b"\0")[1:3] == [b"/opt/venv/bin/muongan", b"serve"]
    for pid in (init, service):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        uids, gids = (line.split()[1:] for line in status if line.startswith(("Uid:", "Gid:")))
        assert set(uids) == set(gids) == {"10001"}, (pid, uids, gids)

    write = "open('/opt/muongan/models/default/generator.onnx', 'r+b')"
    attempt = podman("exec", name, "python", "-c", write, check=False)
    assert attempt.returncode != 0 and "PermissionError" in attempt.stderr
    create = podman("exec", name, "python", "-c", "open('/opt/muongan/models/default/new', 'w')", check=False)
    assert create.returncode != 0 and "PermissionError" in create.stderr


def test_healthcheck_passes(served: tuple[str, str, float]) -> None:
    name = served[0]
    config = podman("inspect", "--format", "{{json .Config.Healthcheck}}", name).stdout
    assert "/healthz" in config
    check = podman("healthcheck", "run", name, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"


def test_sigterm_ends_it_within_10_s_cutting_an_open_stream(image: str) -> None:
    name = f"muongan-test-sigterm-{os.getpid()}"
    with running(image, name) as url:
        wait_ready(f"{url}/readyz", name)
        params: dict[str, str | int] = {"n": 10**9, "seed": SEED, "format": "arrow"}
        with httpx.stream("GET", f"{url}/v1/muons", params=params, timeout=30) as response:
            assert response.status_code == 200
            chunks = response.iter_bytes()
            received = len(next(chunks))
            podman("kill", "--signal", "TERM", name)
            signalled = time.monotonic()
            # The stream runs on through the grace period, then ends without its closing chunk: an error.
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in chunks:
                    received += len(chunk)
        exit_code = podman("wait", name, timeout=30).stdout.strip()
        stopped_s = time.monotonic() - signalled
    assert received > 0
    assert stopped_s < 10, f"stopped {stopped_s:.1f} s after SIGTERM"
    # 143: ended by the SIGTERM itself, re-raised once the server has shut down; not 137 (SIGKILL) nor a crash.
    assert exit_code in {"0", "143"}, f"exit status {exit_code}: not a clean shutdown"
