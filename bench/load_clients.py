"""Load on one server: 32 concurrent streaming clients, with and without free slots, and slow readers.

    .venv/bin/python -m bench.load_clients --model models/default --clients 32 --seconds 30

Runs ``muongan serve`` as a subprocess on a loopback port (bench/load_server.py) and three phases:

1. ``all admitted``: ``max_concurrent`` = clients; every client streams one large Arrow request (n far more
   than it can read in the time) and reads as fast as it can until the deadline. Measured: errors
   (anything but a 200), bytes per client (fairness: min/max and coefficient of variation), total rows/s.
2. ``busy``: ``max_concurrent`` = 4, the default; a refused client (429) waits ``Retry-After`` and asks
   again, an admitted one streams a smaller request to its end and asks again. Measured: errors other
   than the deliberate 429s, the 429s, requests completed per client. Run once per ``--admission-wait-s``
   value (the server's waiting line; 0 = refuse at once), side by side.
3. ``slow readers``: clients read 16 kB per second. Back-pressure means the server makes only what the
   sockets and its small queues hold, then waits: its RSS must stay flat and its CPU near zero while
   the clients stall. Measured: RSS after the queues filled and at the end, server CPU seconds spent.

The server's peak RSS (VmHWM) over each phase and its RSS sampled every 0.5 s are reported.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load_server import Served

ROW_BYTES = 32  # 8 float32 columns in the Arrow body
PHASES = ("all admitted", "busy", "slow readers")


@dataclass
class Client:
    """What one client got: bytes, answers by status, failures (transport errors, unexpected statuses)."""

    received: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    completed: int = 0
    errors: list[str] = field(default_factory=list)


def _stream(http: httpx.Client, client: Client, n: int, seed: int, until: float, pace: float | None) -> float | None:
    """One request; returns the Retry-After to wait if refused. ``pace``: bytes per second, None = flat out."""
    began = time.monotonic()
    with http.stream("GET", "/v1/muons", params={"n": n, "seed": seed, "format": "arrow"}) as response:
        client.statuses[response.status_code] += 1
        if response.status_code == 429:
            response.read()
            return float(response.headers["retry-after"])
        if response.status_code != 200:
            client.errors.append(f"{response.status_code}: {response.read()[:200]!r}")
            return None
        for chunk in response.iter_raw(16384 if pace else 1 << 20):
            client.received += len(chunk)
            if pace:
                time.sleep(max(0.0, began + client.received / pace - time.monotonic()))
            if time.monotonic() > until:
                return None
        client.completed += 1
    return None


def _run_client(url: str, client: Client, index: int, n: int, until: float, pace: float | None) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        request = 0
        while time.monotonic() < until:
            try:
                wait = _stream(http, client, n, seed=1000 * index + request, until=until, pace=pace)
            except httpx.HTTPError as error:
                client.errors.append(repr(error))
                return
            request += 1
            if wait is not None:
                time.sleep(min(wait, max(0.0, until - time.monotonic())))


def run_phase(server: Served, clients: int, seconds: float, n: int, pace: float | None = None) -> dict[str, Any]:
    """``clients`` threads streaming for ``seconds``; the server's RSS is sampled meanwhile."""
    until = time.monotonic() + seconds
    results = [Client() for _ in range(clients)]
    threads = [
        threading.Thread(target=_run_client, args=(server.url, result, i, n, until, pace))
        for i, result in enumerate(results)
    ]
    samples: list[tuple[float, float, float]] = []  # (seconds, RSS MB, server CPU seconds)
    began = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        samples.append((time.monotonic() - began, server.rss_mb(), server.cpu_seconds()))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    received = [result.received for result in results]
    statuses = sum((result.statuses for result in results), Counter())
    errors = [error for result in results for error in result.errors]
    mean = statistics.mean(received)
    return {
        "clients": clients,
        "seconds": seconds,
        "n_per_request": n,
        "statuses": dict(statuses),
        "errors": len(errors),
        "error_examples": errors[:3],
        "completed_requests": sum(result.completed for result in results),
        "clients_with_muons": sum(result.received > 0 for result in results),
        "rows_per_s": round(sum(received) / ROW_BYTES / seconds),
        "mb_per_client": {
            "min": round(min(received) / 1e6, 2),
            "median": round(statistics.median(received) / 1e6, 2),
            "max": round(max(received) / 1e6, 2),
            "cv": round(statistics.pstdev(received) / mean, 3) if mean else None,
        },
        **_halves(samples),
        "server_peak_rss_mb": round(server.peak_rss_mb()),
    }


def _halves(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Server CPU and RSS growth in each half of the phase: a back-pressured server stops in the second."""
    middle = next(i for i, sample in enumerate(samples) if sample[0] >= samples[-1][0] / 2)
    first, mid, last = samples[0], samples[middle], samples[-1]
    return {
        "server_cpu_s": {"first_half": round(mid[2] - first[2], 2), "second_half": round(last[2] - mid[2], 2)},
        "server_rss_mb": {
            "start": round(first[1]),
            "middle": round(mid[1]),
            "end": round(last[1]),
            "max": round(max(sample[1] for sample in samples)),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--slow-pace", type=float, default=16384, help="bytes per second a slow reader takes")
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=list(PHASES))
    parser.add_argument(
        "--admission-wait-s", type=float, nargs="+", default=[5.0], help="server waiting line(s) for the busy phase"
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores usable, shared",
        "model": str(args.model),
    }
    big = 10**9  # far more than a client can read in the time: every stream runs to the deadline
    if "all admitted" in args.phases:
        with Served(args.model, {"max_concurrent": args.clients, "max_n": big}) as server:
            report["server_rss_idle_mb"] = round(server.rss_mb())
            report["all admitted"] = run_phase(server, args.clients, args.seconds, big)
    for wait in args.admission_wait_s if "busy" in args.phases else []:
        with Served(args.model, {"max_concurrent": 4, "max_n": big, "admission_wait_s": wait}) as server:
            report[f"busy, admission_wait_s {wait:g}"] = run_phase(server, args.clients, args.seconds, 200_000)
    if "slow readers" in args.phases:
        with Served(args.model, {"max_concurrent": args.clients, "max_n": big}) as server:
            report["slow readers"] = run_phase(server, args.clients, args.seconds, big, pace=args.slow_pace)
            report["slow readers"]["pace_bytes_per_s"] = args.slow_pace
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
