"""``muongan serve`` as a subprocess on a free loopback port, with its memory and CPU readable from /proc.

The reliability benchmarks (fuzzing, load, disconnects) measure the server as a user runs it: its own
process, configured through the same options, so its peak RSS and CPU time are its own and not the
benchmark's. Settings are passed as ``--option=value``; the API key goes through the environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """A running server: ``url``, ``pid``, and its RSS / peak RSS / CPU seconds sampled on demand."""

    def __init__(self, model: Path, settings: Mapping[str, object], api_key: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]
        command = [sys.executable, "-m", "muongan.cli", "serve", "--model", str(model), "--port", str(self.port)]
        env = {**os.environ, "MUONGAN_API_KEY": api_key}
        self.process = subprocess.Popen([*command, "--log-level", "warning", *options], env=env)
        self.pid = self.process.pid

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"muongan serve did not become ready (exit status {self.process.poll()})")
            time.sleep(0.2)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """High-water mark of resident memory since the process started (VmHWM)."""
        return self._status("VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server, all threads."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
