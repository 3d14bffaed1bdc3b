"""docker-compose.yml run for real: replicas of the serving image behind the nginx image, under podman.

The Docker Compose CLI of the dev extra talks to podman's Docker-compatible API on a socket of the test's
own, with the CPU override (no GPU here) and the images `make image image-nginx` built. On a host without
systemd podman runs no health checks by itself, so deploy/podman/healthchecks.sh runs beside it, as the
deploy README says. Checked through nginx's published port: requests reach both replicas, a replica killed
mid-stream fails only its own stream while the other replica's runs to the last byte, and `--scale
muongan=3` is picked up by nginx without a restart.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_image import ENGINE_ENV, ROOT, built, free_port, podman, wait_ready

COMPOSE = [
    str(Path(sys.executable).parent / "docker-compose"),
    "-f",
    "docker-compose.yml",
    "-f",
    "deploy/compose.cpu.yml",
]
SEED = 77


@dataclass(frozen=True)
class Stack:
    project: str
    url: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [*COMPOSE, "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    def replicas(self) -> list[str]:
        names = podman(
            "ps", "--filter", f"label=com.docker.compose.project={self.project}", "--format", "{{.Names}}"
        ).stdout.split()
        return sorted(name for name in names if "-muongan-" in name)

    def address(self, container: str) -> str:
        return podman(
            "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container
        ).stdout.strip()

    def nginx(self) -> str:
        names = podman("ps", "--format", "{{.Names}}").stdout.split()
        (name,) = (name for name in names if name.startswith(f"{self.project}-nginx-"))
        return name

    def upstreams(self) -> list[str]:
        """The replica address of every request nginx has logged, in order."""
        log = podman("logs", self.nginx()).stdout
        return [line.rsplit("upstream=", 1)[1].split(":")[0] for line in log.splitlines() if "upstream=" in line]


def _active_generations(container: str) -> float:
    script = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    text = podman("exec", container, "python", "-c", script).stdout
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "muongan_active_generations":
                return sample.value
    raise AssertionError(f"{container} exports no muongan_active_generations")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    image, nginx = built("image"), built("image-nginx")
    root = tmp_path_factory.mktemp("podman")
    socket = root / "podman.sock"
    project = f"muongan-test-{os.getpid()}"
    port = free_port()
    env = {
        **{key: value for key, value in ENGINE_ENV.items() if not key.startswith("MUONGAN_")},
        "DOCKER_HOST": f"unix://{socket}",
        "MUONGAN_IMAGE": image,
        "MUONGAN_NGINX_IMAGE": nginx,
        "MUONGAN_PORT": str(port),
        "MUONGAN_DRAW_THREADS": "1",
    }
    helpers = [
        subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=ENGINE_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [str(ROOT / "deploy" / "podman" / "healthchecks.sh"), "2"],
            env=ENGINE_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    stack = Stack(project, f"http://127.0.0.1:{port}", env)
    try:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        stack.compose("up", "-d", "--no-build")
        wait_ready(f"{stack.url}/readyz", f"{project}-nginx-1")
        yield stack
    finally:
        subprocess.run(
            [*COMPOSE, "-p", project, "down", "-t", "0"], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=30)


def test_requests_through_nginx_reach_both_replicas(stack: Stack) -> None:
    replicas = stack.replicas()
    assert len(replicas) == 2
    before = len(stack.upstreams())
    with httpx.Client(timeout=60) as client:
        for start in range(0, 8000, 1000):
            response = client.get(
                f"{stack.url}/v1/muons", params={"n": 1000, "seed": SEED, "start": start, "format": "npy"}
            )
            assert response.status_code == 200 and response.headers["server"].startswith("nginx")
            assert np.load(io.BytesIO(response.content)).shape == (1000, 8)
    served = stack.upstreams()[before:]
    assert len(served) == 8 and set(served) == {stack.address(name) for name in replicas}
    # The nginx image's own HEALTHCHECK (its /nginx-health) passes too.
    check = podman("healthcheck", "run", stack.nginx(), check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_replica_killed_mid_stream_fails_only_its_own_stream(stack: Stack) -> None:
    replicas = stack.replicas()
    # Larger than what the buffers between replica and client hold, so the unread stream stays open.
    n = 2_000_000
    params: dict[str, str | int] = {"n": n, "seed": SEED, "format": "npy"}
    with httpx.Client(timeout=60) as client:
        whole = client.get(f"{stack.url}/v1/muons", params=params).content
        with client.stream("GET", f"{stack.url}/v1/muons", params=params) as doomed:
            doomed_chunks = doomed.iter_bytes()
            next(doomed_chunks)
            # The client reads no further, so the stream holds its replica's generation slot.
            (victim,) = (name for name in replicas if _active_generations(name) == 1)
            with client.stream("GET", f"{stack.url}/v1/muons", params=params) as survivor:
                survivor_chunks = survivor.iter_bytes()
                received = [next(survivor_chunks)]
                (other,) = (name for name in replicas if name != victim)
                assert _active_generations(other) == 1, "least_conn sent both streams to one replica"
                podman("kill", victim)
                received.extend(survivor_chunks)
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in doomed_chunks:
                    pass
    assert b"".join(received) == whole
    # The stack heals: compose brings the replica back when asked, and nginx serves on.
    stack.compose("up", "-d", "--no-build")
    assert httpx.get(f"{stack.url}/v1/muons", params={"n": 10, "seed": SEED}, timeout=60).status_code == 200


def test_scaling_to_three_replicas_is_picked_up_by_nginx(stack: Stack) -> None:
    stack.compose("up", "-d", "--no-build", "--scale", "muongan=3")
    replicas = stack.replicas()
    assert len(replicas) == 3
    addresses = {stack.address(name) for name in replicas}
    deadline = time.monotonic() + 90
    seen: set[str] = set()
    with httpx.Client(timeout=60) as client:
        while seen != addresses and time.monotonic() < deadline:
            before = len(stack.upstreams())
            for _ in range(6):
                assert client.get(f"{stack.url}/v1/muons", params={"n": 10, "seed": SEED}).status_code == 200
            seen |= set(stack.upstreams()[before:])
            time.sleep(1)
    assert seen == addresses, f"nginx reached {sorted(seen)} of {sorted(addresses)}"
