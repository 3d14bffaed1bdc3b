"""Property-based fuzzing of the HTTP API: from its own OpenAPI schema (schemathesis), and of its uploads.

    .venv/bin/python -m bench.fuzz_api --model models/default --cases-per-operation 120 --upload-cases 400

Runs ``muongan serve`` with small limits (so every generated request is cheap) and two fuzzers:

1. schema: schemathesis draws requests for every operation from ``/openapi.json``, both valid ones
   (positive) and ones that break the schema (negative), and checks every response: no 5xx (ST101);
   status code, media type, headers and JSON body as documented (ST10x, "schema violations"); a request
   that breaks the schema refused (ST201). A schema-valid request refused (ST202) is counted apart:
   the server's limits (``max_n``, the ROOT limit, n x seeds) are settings the static schema cannot state.
2. uploads: numpy arrays of random dtype, shape and values (NaN, inf, strings, objects), and valid npy,
   Arrow, Parquet and ROOT bodies cut short, bit-flipped or padded, posted to ``/v1/muons/custom`` and
   ``/v1/muons/enhanced`` under random media types. Property: a 200 whose npy body holds
   ``X-Muon-Count`` finite muons with positive weights, or a 4xx whose JSON ``detail`` names the problem.

Prints one JSON object: cases, responses by status, and failures by kind with a few examples.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis.extra.numpy as hnp
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bench.load_server import Served
from service.http.uploads import UPLOAD_TYPES
from service.samples import Sample, write_sample

# Small limits keep every generated request cheap; ROOT and enhanced limits equal the plain ones so that
# the only limit the schema cannot state is max_n itself.
LIMITS: dict[str, object] = {
    "max_n": 2000,
    "max_root_n": 2000,
    "max_upload_bytes": 200_000,
    "max_seeds": 2000,
    "max_enhanced_work": 2000 * 2000,
    "max_concurrent": 4,
    "draw_threads": 1,
}
PLOT_N_CAP = 2000  # /v1/plot may ask for 2e6 muons (a minute each on 2 cores): generated n is capped for speed
SCHEMA_VIOLATIONS = ("ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110", "ST111")
EXAMPLES_KEPT = 3

# Upload bodies are opaque binary to the schema; send them as they are.
schemathesis.serializer.alias(list(UPLOAD_TYPES), "application/octet-stream")


@dataclass
class Tally:
    """Cases sent, responses by status, failures by kind with their messages."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    messages: dict[str, list[str]] = field(default_factory=dict)
    not_generated: list[str] = field(default_factory=list)

    def fail(self, kind: str, message: str) -> None:
        self.failures[kind] += 1
        self.messages.setdefault(kind, []).append(message[:600])

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": sum(count for status, count in self.statuses.items() if status >= 500),
            "failures": dict(self.failures),
            "examples": {kind: messages[:EXAMPLES_KEPT] for kind, messages in self.messages.items()},
            "not_generated": self.not_generated,
        }


def _affordable(case: schemathesis.Case) -> None:
    if case.operation.path == "/v1/plot" and isinstance(case.query, dict):
        n = case.query.get("n")
        if isinstance(n, int) and n > PLOT_N_CAP:
            case.query["n"] = PLOT_N_CAP


def fuzz_schema(url: str, cases_per_operation: int, random_seed: int = 0) -> Tally:
    """schemathesis over every operation of ``url``'s OpenAPI schema: up to ``cases_per_operation`` positive and
    as many negative cases each (fewer where the schema allows fewer distinct requests)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    tally = Tally()
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"the service's OpenAPI schema is invalid: {result.err()}")
        operation = result.ok()
        media_types = operation.definition.raw.get("requestBody", {}).get("content", {})
        uploads = bool(media_types) and "application/json" not in media_types
        excluded = [positive_data_acceptance] if uploads else []  # any bytes match "binary"; few are a sample
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, url, cases_per_operation, random_seed, excluded, tally)
    return tally


def _fuzz_operation(
    operation: Any, mode: GenerationMode, url: str, examples: int, random_seed: int, excluded: list, tally: Tally
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @seed(random_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: schemathesis.Case) -> None:
        _affordable(case)
        tally.cases += 1
        try:
            response = case.call(base_url=url, timeout=60)
        except requests.RequestException as error:  # the server dropped the connection: as bad as a 5xx
            tally.fail("no answer", f"{operation.label} [{mode.value}] {case.as_curl_command()}: {error}")
            return
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, excluded_checks=excluded)
        except FailureGroup as group:
            for failure in group.exceptions:
                answer = f"{response.status_code} {response.text[:200]}"
                tally.fail(f"{failure.code} {failure.title}", f"{operation.label} [{mode.value}] -> {answer}")

    try:
        run()
    except Unsatisfiable:  # nothing to break in an operation without parameters or body
        tally.not_generated.append(f"{operation.label} [{mode.value}]")


# Upload fuzzing.


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.hasobject)
    return buffer.getvalue()


def _arrow(columns: dict[str, np.ndarray]) -> bytes:
    table = pa.table(columns)
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def valid_bodies(seed_muons: np.ndarray, folder: Path) -> dict[str, list[bytes]]:
    """Well-formed uploads of each route, to be cut and bit-flipped: aux arrays and seed samples."""
    aux = np.abs(np.random.default_rng(0).standard_normal((50, 4))).astype(np.float32)
    samples = []
    for suffix in ("parquet", "root", "arrow"):
        path = folder / f"seeds.{suffix}"
        write_sample(Sample(seed_muons), path)
        samples.append(path.read_bytes())
    return {
        "/v1/muons/custom": [_npy(aux), _arrow({name: aux[:, i] for i, name in enumerate(["xy", "z", "pt", "pz"])})],
        "/v1/muons/enhanced": [_npy(seed_muons), _npy(seed_muons[:, :7]), *samples],
    }


DTYPES = ["<f4", ">f8", "<f2", "<i1", "<i8", "<u2", "|b1", "<c8", "<U3", "|S2", "<M8[s]", "O"]


def _arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12)
    plain = st.sampled_from([d for d in DTYPES if d != "O"]).flatmap(lambda dtype: hnp.arrays(dtype, shapes))
    objects = shapes.map(lambda shape: np.full(shape, {"x": 1}, dtype=object))
    return st.one_of(plain, objects)


@st.composite
def _mutated(draw: Callable[..., Any], bodies: list[bytes]) -> bytes:
    body = bytearray(draw(st.sampled_from(bodies)))
    how = draw(st.sampled_from(["cut", "flip", "pad", "splice"]))
    at = draw(st.integers(0, len(body)))
    if how == "cut":
        return bytes(body[:at])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            body[draw(st.integers(0, len(body) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(body)
    extra = draw(st.binary(min_size=1, max_size=64))
    return bytes(body + extra) if how == "pad" else bytes(body[:at] + extra + body[at:])


def check_upload_response(response: httpx.Response) -> str | None:
    """What is wrong with an answer to an upload, or ``None``: a complete npy body, or a 4xx naming the problem."""
    if response.status_code == 200:
        muons = np.load(io.BytesIO(response.content), allow_pickle=False)
        count = int(response.headers["x-muon-count"])
        if muons.shape != (count, 8) or not np.isfinite(muons).all() or not (muons[:, 7] > 0).all():
            return f"200 with a body of shape {muons.shape} for X-Muon-Count {count}, or non-finite muons"
        return None
    if response.status_code not in (413, 415, 422):
        return f"status {response.status_code}: {response.text[:200]}"
    detail = response.json().get("detail")
    return None if detail else f"{response.status_code} without a detail: {response.text[:200]}"


def fuzz_uploads(url: str, bodies: dict[str, list[bytes]], cases: int, random_seed: int = 0) -> Tally:
    """Random arrays and damaged valid bodies, posted to both upload routes under random media types."""
    tally = Tally()
    with httpx.Client(base_url=url, timeout=60) as client:
        for path, valid in bodies.items():
            _post_uploads(
                client, path, st.one_of(_arrays().map(_npy), _mutated(valid)), cases // len(bodies), random_seed, tally
            )
    return tally


def _post_uploads(
    client: httpx.Client, path: str, uploads: st.SearchStrategy[bytes], examples: int, random_seed: int, tally: Tally
) -> None:
    media_types = [*UPLOAD_TYPES, "application/octet-stream", "text/plain", ""]
    params: dict[str, str | int] = {"format": "npy"} if path.endswith("custom") else {"format": "npy", "n": 20}

    @seed(random_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(uploads, st.sampled_from(media_types))
    def run(body: bytes, media_type: str) -> None:
        headers = {"content-type": media_type} if media_type else {}
        tally.cases += 1
        try:
            response = client.post(path, params=params, content=body, headers=headers)
        except httpx.TransportError as error:
            tally.fail("no answer", f"{path} {media_type or 'untyped'} {body[:40]!r}...: {error!r}")
            return
        tally.statuses[response.status_code] += 1
        problem = check_upload_response(response)
        if problem is not None:
            tally.fail("upload answer", f"{path} {media_type or 'untyped'} {body[:40]!r}...: {problem}")

    run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument(
        "--cases-per-operation", type=int, default=120, help="schemathesis cases per operation and mode"
    )
    parser.add_argument("--upload-cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with Served(args.model, LIMITS) as server:
        began = time.perf_counter()
        schema = fuzz_schema(server.url, args.cases_per_operation, args.seed)
        schema_s = time.perf_counter() - began
        seeds = httpx.get(f"{server.url}/v1/muons", params={"n": 300, "format": "npy"}).content
        folder = Path(f"/tmp/muongan-fuzz-{server.pid}")
        folder.mkdir(exist_ok=True)
        bodies = valid_bodies(np.load(io.BytesIO(seeds), allow_pickle=False), folder)
        began = time.perf_counter()
        uploads = fuzz_uploads(server.url, bodies, args.upload_cases, args.seed)
        uploads_s = time.perf_counter() - began
        alive = httpx.get(f"{server.url}/healthz").status_code == 200
        peak = server.peak_rss_mb()
    report = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores usable",
        "model": str(args.model),
        "limits": LIMITS,
        "schema": {**schema.summary(), "seconds": round(schema_s, 1)},
        "schema_violations": sum(n for kind, n in schema.failures.items() if kind.split()[0] in SCHEMA_VIOLATIONS),
        "accepted_invalid": sum(n for kind, n in schema.failures.items() if kind.startswith("ST201")),
        "refused_valid_over_max_n": sum(
            "exceeds this server's limit" in message
            for kind, messages in schema.messages.items()
            if kind.startswith("ST202")
            for message in messages
        ),
        "uploads": {**uploads.summary(), "seconds": round(uploads_s, 1)},
        "server_alive_after": alive,
        "server_peak_rss_mb": round(peak),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
