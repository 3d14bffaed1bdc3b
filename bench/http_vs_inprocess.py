"""HTTP end to end vs in-process generation of the same model, side by side; RSS while streaming; CSV latency.

    .venv/bin/python bench/http_vs_inprocess.py --model models/default --n 1000000 --repeats 3

Runs ``muongan serve`` as a subprocess on a free loopback port and, in this process, the same
:class:`service.engine.generation.Engine` on the same model with the same settings. Runs alternate
(in-process, HTTP, in-process, ...) so that load from other jobs on a shared machine hits both alike;
medians are reported. The HTTP client reads the Arrow stream and counts bytes (no parsing), which is
what a consumer that writes the stream to disk pays. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from service.engine.generation import Engine, Request
from service.http.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(model: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "muongan.cli",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--max-n",
        str(10**10),
    ]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.2)


def in_process(engine: Engine, n: int, seed: int) -> float:
    began = time.perf_counter()
    rows = sum(len(block) for block in engine.blocks(engine.prepare(Request(seed, 0, n, engine.plain_source()))))
    assert rows == n
    return n / (time.perf_counter() - began)


def over_http(url: str, n: int, seed: int, fmt: str = "arrow") -> tuple[float, int]:
    began = time.perf_counter()
    size = 0
    with httpx.stream("GET", f"{url}/v1/muons", params={"n": n, "seed": seed, "format": fmt}, timeout=None) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
    return n / (time.perf_counter() - began), size


def rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def stream_with_rss(url: str, pid: int, n: int, seconds: float) -> dict[str, object]:
    """Stream up to ``n`` muons for at most ``seconds``; sample the server's RSS every second."""
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not done.is_set():
            samples.append((round(time.monotonic() - began, 1), rss_mb(pid)["VmRSS"]))
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began, size = time.perf_counter(), 0
    with httpx.stream("GET", f"{url}/v1/muons", params={"n": n, "seed": 99, "format": "arrow"}, timeout=None) as r:
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
            if time.perf_counter() - began > seconds:
                break
    elapsed = time.perf_counter() - began
    done.set()
    sampler.join()
    rows = size / 32  # 8 float32 columns; Arrow framing is < 0.1%
    return {
        "rows_streamed": int(rows),
        "seconds": round(elapsed, 1),
        "rows_per_s": round(rows / elapsed),
        "rss_mb_samples": samples[:: max(1, len(samples) // 20)],
        **rss_mb(pid),
    }


def csv_latency(url: str, n: int, count: int) -> dict[str, float]:
    times = []
    with httpx.Client(timeout=None) as client:
        for i in range(count):
            began = time.perf_counter()
            response = client.get(f"{url}/v1/muons", params={"n": n, "seed": i, "format": "csv"})
            response.raise_for_status()
            times.append(time.perf_counter() - began)
    times.sort()
    return {
        "n": n,
        "requests": count,
        "median_ms": round(1e3 * statistics.median(times), 1),
        "p90_ms": round(1e3 * times[int(0.9 * (count - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--n", type=int, default=1_000_000, help="muons per throughput run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-n", type=int, default=100_000_000, help="muons asked for in the RSS run")
    parser.add_argument("--rss-seconds", type=float, default=300, help="longest RSS run, seconds")
    args = parser.parse_args()

    settings = Settings(model_dir=args.model)
    engine = Engine(
        settings.load_model(),
        settings.draw_threads,
        settings.prefetch_blocks,
    )
    port = free_port()
    server = start_server(args.model, port)
    url = f"http://127.0.0.1:{port}"
    try:
        in_process(engine, min(args.n, 100_000), 0)  # warm both
        over_http(url, min(args.n, 100_000), 0)
        local, remote = [], []
        for repeat in range(args.repeats):
            local.append(in_process(engine, args.n, repeat + 1))
            remote.append(over_http(url, args.n, repeat + 1)[0])
        engine.close()
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "model": str(args.model),
            "provider": engine.model.provider,
            "n": args.n,
            "in_process_rows_per_s": [round(x) for x in local],
            "http_rows_per_s": [round(x) for x in remote],
            "ratio_http_over_in_process_median": round(statistics.median(remote) / statistics.median(local), 3),
            "csv_latency_1e4": csv_latency(url, 10_000, 20),
            "rss_stream": stream_with_rss(url, server.pid, args.rss_n, args.rss_seconds),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
