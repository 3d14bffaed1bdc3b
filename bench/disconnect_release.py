"""How fast a server releases the work of a client that disconnects mid-stream.

    .venv/bin/python -m bench.disconnect_release --model models/default --repeats 5

Runs ``muongan serve`` as a subprocess (bench/load_server.py). For each mode (plain, boosted, custom,
enhanced) and streamed format (arrow, npy, csv), a client opens a long stream, reads about 1 MB and
disconnects; then, polled every 5 ms:

- slot: seconds until the server's ``muongan_active_generations`` gauge is back to 0 (the generation
  slot is free for the next client);
- cpu: seconds until the server's CPU use (from /proc, all threads) over the last 100 ms falls below
  10% of one core, i.e. the block being generated when the client left is finished and nothing follows.

Also measured: a weighted request (boosted) whose client leaves before the first byte, while the server
still sums the weights of all n rows (Engine.prepare, watched by service/http/departures.py): how long the
slot stays held after the client has gone (``--before-first-byte-only`` measures just that).
Prints one JSON object with the median and maximum of each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.load_server import Served

POLL_S = 0.005
CPU_WINDOW_S = 0.1
IDLE_CORES = 0.1


def _active(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("muongan_active_generations "):
            return float(line.split()[1])
    raise KeyError("muongan_active_generations")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


def requests(seeds: np.ndarray, n: int) -> dict[str, dict[str, Any]]:
    """httpx request arguments per mode, each asking for ``n`` muons (custom: ``n`` aux rows)."""
    aux = np.abs(np.random.default_rng(1).standard_normal((n, 4)))
    npy = {"content-type": "application/x-npy"}
    return {
        "plain": {"method": "GET", "url": "/v1/muons", "params": {"n": n}},
        "boosted": {"method": "POST", "url": "/v1/muons/boosted", "json": {"n": n, "scale": {"pt": 3}}},
        "custom": {"method": "POST", "url": "/v1/muons/custom", "content": _npy(aux), "headers": npy},
        "enhanced": {"method": "POST", "url": "/v1/muons/enhanced", "params": {"n": n}, "content": _npy(seeds)},
    }


def leave_once(server: Served, request: dict[str, Any], fmt: str) -> dict[str, float]:
    """Open a stream, read about 1 MB, disconnect; seconds until the slot is free and the CPU is idle."""
    monitor = httpx.Client(base_url=server.url, timeout=30)
    request = {**request, "params": {**request.get("params", {}), "format": fmt}}
    with httpx.Client(base_url=server.url, timeout=120) as client, client.stream(**request) as response:
        assert response.status_code == 200, response.read()[:300]
        received = 0
        for chunk in response.iter_raw():
            received += len(chunk)
            if received >= 1 << 20:
                break
        left = time.perf_counter()
    slot = cpu = None
    history = [(left, server.cpu_seconds())]
    while slot is None or cpu is None:
        time.sleep(POLL_S)
        now = time.perf_counter()
        history.append((now, server.cpu_seconds()))
        if slot is None and _active(monitor) == 0:
            slot = now - left
        window = [(t, c) for t, c in history if t >= now - CPU_WINDOW_S]
        span = window[-1][0] - window[0][0]
        if cpu is None and span >= CPU_WINDOW_S * 0.8 and (window[-1][1] - window[0][1]) / span < IDLE_CORES:
            cpu = window[0][0] - left  # the window that starts here is idle
        if now - left > 60:
            raise RuntimeError("the server did not release a disconnected stream within 60 s")
    monitor.close()
    return {"slot_s": slot, "cpu_idle_s": max(cpu, 0.0)}


def leave_before_first_byte(server: Served, n: int, wait_s: float, limit_s: float) -> float:
    """A boosted client that gives up after ``wait_s`` while the server sums weights: seconds the slot stays held."""
    monitor = httpx.Client(base_url=server.url, timeout=30)
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(f"{server.url}/v1/muons/boosted", json={"n": n, "scale": {"pt": 3}}, timeout=wait_s)
    left = time.perf_counter()
    while _active(monitor) > 0 and time.perf_counter() - left < limit_s:
        time.sleep(0.05)
    held = time.perf_counter() - left
    monitor.close()
    return held


def left_mid_stream(server: Served, n: int, repeats: int) -> dict[str, Any]:
    """Every mode and streamed format, ``repeats`` times each."""
    seeds = np.load(io.BytesIO(httpx.get(f"{server.url}/v1/muons", params={"n": 200, "format": "npy"}).content))
    results: dict[str, dict[str, Any]] = {}
    for mode, request in requests(seeds, n).items():
        for fmt in ("arrow", "npy", "csv"):
            runs = [leave_once(server, request, fmt) for _ in range(repeats)]
            results[f"{mode} {fmt}"] = {key: summary([run[key] for run in runs]) for key in runs[0]}
    return {
        "left_mid_stream": results,
        "worst_slot_s": max(result["slot_s"]["max"] for result in results.values()),
        "worst_cpu_idle_s": max(result["cpu_idle_s"]["max"] for result in results.values()),
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3), "runs": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=2_000_000, help="muons asked for (far more than is read)")
    parser.add_argument("--before-first-byte-only", action="store_true", help="skip the mid-stream matrix")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores usable, shared",
        "model": str(args.model),
        "n": args.n,
    }
    settings = {"max_n": 10**10, "max_upload_bytes": 1 << 30, "max_enhanced_work": 10**12}
    with Served(args.model, settings) as server:
        if not args.before_first_byte_only:
            report.update(left_mid_stream(server, args.n, args.repeats))
        limit = 30.0
        held = [leave_before_first_byte(server, 10**8, wait_s=2.0, limit_s=limit) for _ in range(args.repeats)]
        report["left_before_first_byte"] = {
            "mode": "boosted",
            "n": 10**8,
            "client_gave_up_after_s": 2.0,
            "slot_held_after_leaving_s": summary(held),
            "capped_at_s": limit,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
