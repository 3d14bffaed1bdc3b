"""The catalogue of bad requests: every one a 4xx whose JSON ``detail`` names the problem, and the server serves on.

One real uvicorn server on a loopback port with the tiny real model (``test_service.Server``, its limits:
5e6 muons, 20,000 for ROOT, 300,000-byte uploads, 5,000 seeds). After every bad request the test checks
``/healthz`` and a real 5-muon request. Abuse below HTTP (huge or broken headers) is answered by uvicorn
itself before the app sees it: plain-text 4xx, checked with raw sockets further down.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import socket
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
from test_service import LIMITS, muons_from, npy_bytes, plain

from service.samples import Sample, write_sample
from service.samples.root import TREE

UPLOAD_LIMIT = int(LIMITS["max_upload_bytes"])
NPY = {"content-type": "application/x-npy"}
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}
JSON = {"content-type": "application/json"}


# Bodies.


def seeds(count: int, columns: int = 7) -> np.ndarray:
    """Valid seed muons as far as the contract goes: pdg 13, everything else 1."""
    muons = np.ones((count, columns), np.float32)
    muons[:, 0] = 13
    return muons


def arrow_stream(columns: dict[str, Any]) -> bytes:
    table = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def aux_arrow(rows: int = 3, **replace: Any) -> bytes:
    columns: dict[str, Any] = {name: np.ones(rows, np.float32) for name in ("xy", "z", "pt", "pz")}
    return arrow_stream({**columns, **replace})


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def sample_file(muons: np.ndarray, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"seeds.{suffix}"
        write_sample(Sample(muons), path)
        return path.read_bytes()


def root_without_the_tree() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "other.root"
        with uproot.recreate(path) as file:
            file.mktree("events", {"x": np.float32}).extend({"x": np.ones(3, np.float32)})
        return path.read_bytes()


def npy_header(header: bytes, version: bytes = b"\x01\x00") -> bytes:
    """An npy magic and version followed by a raw header, padded as numpy pads it."""
    header = header.ljust(118) + b"\n"
    return b"\x93NUMPY" + version + len(header).to_bytes(2, "little") + header


def object_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[{"evil": 1}] * 4], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def huge_npy_header() -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)})
    return header.getvalue() + b"\x00" * 64


def npz() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("aux.npy", npy_bytes(np.ones((3, 4), np.float32)))
    return buffer.getvalue()


def bit_flipped_npy_header() -> bytes:
    """numpy tokenizes a damaged header before giving up (found by bench/fuzz_api.py: was a 500)."""
    body = bytearray(npy_bytes(np.ones((50, 4), np.float32)))
    body[110] = ord("(")
    return bytes(body)


# The catalogue.


@dataclass(frozen=True)
class Bad:
    """One bad request and what the answer must say."""

    name: str
    method: str
    path: str
    status: int
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def muons(name: str, message: str, status: int = 422, **params: Any) -> Bad:
    return Bad(f"plain: {name}", "GET", "/v1/muons", status, message, params)


def boosted(name: str, message: str, body: Any, status: int = 422, raw: bytes | None = None) -> Bad:
    return Bad(f"boosted: {name}", "POST", "/v1/muons/boosted", status, message, json=body, body=raw, headers=JSON)


def custom(name: str, message: str, body: bytes, status: int = 422, headers: dict[str, str] | None = None) -> Bad:
    return Bad(f"custom: {name}", "POST", "/v1/muons/custom", status, message, body=body, headers=headers or {})


def enhanced(name: str, message: str, body: bytes, status: int = 422, **params: Any) -> Bad:
    return Bad(f"enhanced: {name}", "POST", "/v1/muons/enhanced", status, message, {"n": 10, **params}, body=body)


SEEDS_8 = np.column_stack([seeds(50), np.ones(50, np.float32)])
INTEGER = "valid integer"
FORMATS = "'arrow', 'npy', 'csv' or 'root'"
CATALOGUE = [
    # Numbers out of range and of the wrong type, in the query.
    muons("n negative", "greater than or equal to 0", n=-1),
    muons("n over max_n", "limit of 5000000", n=10**12),
    muons("n over the ROOT limit", "ROOT limit", n=30_000, format="root"),
    muons("n missing", "Field required"),
    muons("n empty", INTEGER, n=""),
    muons("n a word", INTEGER, n="ten"),
    muons("n a fraction", INTEGER, n=1.5),
    muons("n NaN", INTEGER, n="nan"),
    muons("n infinite", INTEGER, n="inf"),
    muons("n hexadecimal", INTEGER, n="0x10"),
    muons("n of 5000 digits", "exceeded maximum size", n="9" * 5000),
    muons("seed negative", "greater than or equal to 0", n=10, seed=-3),
    muons("seed 2^64", "less than or equal to 18446744073709551615", n=10, seed=2**64),
    muons("seed in exponent notation", INTEGER, n=10, seed="1e3"),
    muons("start negative", "greater than or equal to 0", n=10, start=-1),
    muons("start past 2^62", "less than or equal to 4611686018427387904", n=10, start=2**62 + 1),
    # Unknown formats.
    muons("format unknown", FORMATS, n=10, format="xml"),
    muons("format in capitals", FORMATS, n=10, format="ARROW"),
    muons("format parquet (upload only)", FORMATS, n=10, format="parquet"),
    # Boosted: JSON bodies.
    boosted("scale below 1", "greater than or equal to 1", {"n": 10, "scale": {"pt": 0.5}}),
    boosted("scale above 10", "less than or equal to 10", {"n": 10, "scale": {"pt": 11}}),
    boosted("scale NaN (was a 500)", '"input": "nan"', None, raw=b'{"n": 10, "scale": {"pt": NaN}}'),
    boosted("scale Infinity", '"input": "inf"', None, raw=b'{"n": 10, "scale": {"z": Infinity}}'),
    boosted("scale of an unknown group", "Extra inputs", {"n": 10, "scale": {"energy": 2}}),
    boosted("scale a list", "valid dictionary", {"n": 10, "scale": [2, 2, 2, 2]}),
    boosted("misspelt field", "Extra inputs", {"n": 10, "scales": {"pt": 2}}),
    boosted("n a string", "expected a JSON number, got '10'", {"n": "10"}),
    boosted("n true", "expected a JSON number, got True", {"n": True}),
    boosted("start false", "expected a JSON number, got False", {"n": 10, "start": False}),
    boosted("scale a string", "expected a JSON number, got '2'", {"n": 10, "scale": {"pt": "2"}}),
    boosted("n a fraction", "fractional part", {"n": 10.5}),
    boosted("n missing", "Field required", {}),
    boosted("body a list", "valid dictionary", [10]),
    boosted("format unknown", FORMATS, {"n": 10, "format": "xml"}),
    boosted("body not JSON", "JSON decode error", None, raw=b"n=10&seed=1"),
    boosted("JSON nested 100000 deep", "error parsing the body", None, status=400, raw=b"[" * 100_000),
    boosted("JSON body over the upload limit", f"limit of {UPLOAD_LIMIT} bytes", None, 413, b" " * 400_000),
    # Custom aux: wrong shapes, values and dtypes.
    custom("aux 3 columns", "shape (n, 4)", npy_bytes(np.ones((5, 3)))),
    custom("aux 1-D", "shape (n, 4)", npy_bytes(np.ones(4))),
    custom("aux 3-D", "shape (n, 4)", npy_bytes(np.ones((2, 2, 4)))),
    custom("aux no rows", "1 to 5000000 rows", npy_bytes(np.ones((0, 4)))),
    custom("aux NaN", "finite", npy_bytes(np.full((5, 4), np.nan))),
    custom("aux inf in float16", "finite", npy_bytes(np.full((5, 4), np.inf, np.float16))),
    custom("aux negative", ">= 0", npy_bytes(-np.ones((5, 4)))),
    custom("aux beyond any model", "<= 10", npy_bytes(np.full((5, 4), 11.0))),
    custom("aux complex", "numeric", npy_bytes(np.ones((5, 4), complex))),
    custom("aux strings", "numeric", npy_bytes(np.full((5, 4), "1.0"))),
    custom("aux structured", "numeric", npy_bytes(np.zeros(3, dtype=[(c, "f4") for c in "abcd"]))),
    custom("aux datetimes", "numeric", npy_bytes(np.zeros((3, 4), "M8[s]"))),
    # Custom aux: damaged npy.
    custom("pickled npy (object array)", "object", object_npy()),
    custom("npy truncated", "promises", npy_bytes(np.ones((1000, 4), np.float32))[:500]),
    custom("npy header promising 4e12 values", "promises", huge_npy_header()),
    custom("npy magic only", "not a readable npy header", b"\x93NUMPY\x01\x00"),
    custom("npy header not a dict", "not a readable npy header", npy_header(b"[1, 2, 3]")),
    custom("npy header bit-flipped (was a 500)", "not a readable npy header", bit_flipped_npy_header()),
    custom("npy version 3", "version (3, 0) is not supported", npy_header(b"{}", b"\x03\x00")),
    custom("npy sent as Arrow", "not a readable Arrow IPC", npy_bytes(np.ones((3, 4))), headers=ARROW),
    # Custom aux: Arrow.
    custom("Arrow with other columns", "xy, z, pt, pz", arrow_stream({"a": [1.0], "b": [2.0]})),
    custom("Arrow with an extra column", "exactly the columns", aux_arrow(extra=np.ones(3))),
    custom("Arrow of strings", "numeric", aux_arrow(pt=["a", "b", "c"])),
    custom("Arrow with nulls", "finite", aux_arrow(pt=pa.array([1.0, None, 2.0]))),
    custom("Arrow with no rows", "1 to 5000000 rows", aux_arrow(rows=0)),
    custom("Arrow truncated", "not a readable Arrow IPC", aux_arrow(rows=100)[:-100]),
    custom("Arrow sent as npy", "not a readable npy header", aux_arrow(), headers=NPY),
    # Custom aux: formats this route does not take.
    custom("garbage", "cannot tell the format", b"certainly not an array", status=415),
    custom("empty body", "empty", b""),
    custom("JSON aux", "cannot tell the format", json.dumps([[1, 1, 1, 1]]).encode(), 415, JSON),
    custom("raw pickle", "cannot tell the format", pickle.dumps(np.ones((3, 4))), status=415),
    custom("npz archive", "cannot tell the format", npz(), status=415),
    custom(
        "ROOT media type",
        "root is not accepted here",
        npy_bytes(np.ones((3, 4))),
        415,
        {"content-type": "application/x-root"},
    ),
    custom("upload over the limit", f"limit of {UPLOAD_LIMIT} bytes", npy_bytes(np.ones((20_000, 4))), status=413),
    # Enhanced: seed samples.
    enhanced("seeds not muons (pdg 1)", "pdg", npy_bytes(np.ones((5, 7), np.float32))),
    enhanced("seeds NaN", "non-finite", npy_bytes(np.where(seeds(5) == 1, np.nan, 13).astype(np.float32))),
    enhanced("seeds 5 columns", "(n, 8)", npy_bytes(seeds(5, 5))),
    enhanced("seeds negative weight", "weight", npy_bytes(np.column_stack([seeds(5), -np.ones(5, np.float32)]))),
    enhanced("seeds as an object array", "object", object_npy()),
    enhanced("too many seeds", "1 to 5000 muons", npy_bytes(seeds(5001))),
    enhanced("n x seeds over the work limit", "n x seeds = 100000 x 1001 exceeds", npy_bytes(seeds(1001)), n=100_000),
    enhanced("n missing", "Field required", npy_bytes(seeds(5)), n=None),
    enhanced("smear negative", "greater than 0", npy_bytes(seeds(5)), smear=-1),
    enhanced("smear NaN", '"input": "nan"', npy_bytes(seeds(5)), smear="nan"),
    enhanced("smear infinite", "less than or equal to 5", npy_bytes(seeds(5)), smear="inf"),
    enhanced("plain_fraction 1", "less than 1", npy_bytes(seeds(5)), plain_fraction=1),
    enhanced("plain_fraction negative", "greater than or equal to 0", npy_bytes(seeds(5)), plain_fraction=-0.1),
    enhanced("ROOT magic only", "ROOT", b"root" + b"\x00" * 100),
    enhanced("ROOT truncated", "cannot read tree", sample_file(SEEDS_8, "root")[:3000]),
    enhanced("ROOT without the FairShip tree", f"no {TREE!r} tree", root_without_the_tree()),
    enhanced("Parquet truncated", "Parquet", sample_file(SEEDS_8, "parquet")[:-50]),
    enhanced("Parquet without muon columns", "column", parquet(pa.table({"energy": [1.0, 2.0]}))),
    # Unknown routes and methods.
    Bad("unknown route", "GET", "/v1/nothing", 404, "Not Found"),
    Bad("route in capitals", "GET", "/v1/Muons", 404, "Not Found"),
    Bad("API version 2", "GET", "/v2/muons", 404, "Not Found"),
    Bad("GET on a POST route", "GET", "/v1/muons/boosted", 405, "Method Not Allowed"),
    Bad("DELETE muons", "DELETE", "/v1/muons", 405, "Method Not Allowed"),
    Bad("PUT the model", "PUT", "/v1/model", 405, "Method Not Allowed"),
    Bad("plot of an unknown kind", "GET", "/v1/plot", 422, "'kinematics' or 'p_pt'", {"kind": "energy"}),
    Bad("plot of no muons", "GET", "/v1/plot", 422, "greater than or equal to 1", {"n": 0}),
    Bad("plot of 3e6 muons", "GET", "/v1/plot", 422, "less than or equal to 2000000", {"n": 3_000_000}),
]


def test_the_catalogue_is_large_and_its_names_unique() -> None:
    assert len(CATALOGUE) >= 40
    assert len({bad.name for bad in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("bad", CATALOGUE, ids=lambda bad: bad.name)
def test_bad_request_is_a_4xx_naming_the_problem_and_the_server_serves_on(client: httpx.Client, bad: Bad) -> None:
    params = {name: value for name, value in bad.params.items() if value is not None}
    content = json.dumps(bad.json).encode() if bad.json is not None else bad.body
    response = client.request(bad.method, bad.path, params=params, content=content, headers=bad.headers)
    assert response.status_code == bad.status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert bad.message in (detail if isinstance(detail, str) else json.dumps(detail)), detail
    assert client.get("/healthz").status_code == 200
    assert muons_from(plain(client, 5)).shape == (5, 8)


# Oversized bodies are cut off while they arrive, not read whole.


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole HTTP response with a Content-Length (uvicorn's and the app's errors)."""
    head, blank, body = answer.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":", 1)[1] for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"content-length:")
    ]
    return bool(blank) and bool(lengths) and len(body) >= int(lengths[0])


def raw_exchange(url: str, head: bytes, chunks: Iterable[bytes] = ()) -> tuple[int | None, bytes, int]:
    """Send a raw request head, then body chunks until the server answers or stops taking them.

    Returns the answer's status (``None`` without one), the answer, and the body bytes the server took.
    """
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        answer = bytearray()

        def read() -> None:
            with contextlib.suppress(OSError):
                while not _complete(answer) and (part := sock.recv(65536)):
                    answer.extend(part)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sock.sendall(head)
        sent = 0
        for chunk in chunks:
            if answer:
                break
            try:
                sock.sendall(chunk)  # blocks once the server stops reading and the buffers are full
            except OSError:  # timed out, or the server closed the connection
                break
            sent += len(chunk)
        reader.join(timeout=10)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, bytes(answer), sent


def test_a_chunked_upload_over_the_limit_is_cut_off_after_about_the_limit(base_url: str) -> None:
    """64 MB offered with no Content-Length; the server answers 413 having taken little more than the limit."""
    head = (
        b"POST /v1/muons/custom HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-npy\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    block = b"\x00" * 65536
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    status, answer, sent = raw_exchange(base_url, head, [chunk] * 1024)
    assert status == 413 and f"limit of {UPLOAD_LIMIT} bytes".encode() in answer, answer[:300]
    # Loopback socket buffers hold a few MB; what matters is that the 64 MB were never all taken.
    assert sent < 16 << 20, f"the server took {sent} bytes of a 64 MB upload before answering"


def test_a_declared_length_over_the_limit_is_refused_before_any_body(base_url: str) -> None:
    head = b"POST /v1/muons/boosted HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000000000\r\n\r\n"
    began = time.perf_counter()
    status, answer, _ = raw_exchange(base_url, head)
    assert status == 413 and b"1000000000000 bytes exceeds" in answer, answer[:300]
    assert time.perf_counter() - began < 5


# Abuse below HTTP: uvicorn answers before the app, in plain text.

PROTOCOL_ABUSE: dict[str, tuple[bytes, list[bytes]]] = {
    "header of 1 MB": (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ", [b"a" * 65536] * 16 + [b"\r\n\r\n"]),
    "Content-Length not a number": (b"POST /v1/muons/custom HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", []),
    "two Content-Lengths": (
        b"POST /v1/model HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        [],
    ),
    "no Host": (b"GET /healthz HTTP/1.1\r\n\r\n", []),
    "garbage request line": (b"HELLO THERE\r\n\r\n", []),
    "NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", []),
    "bad chunk size": (b"POST /v1/muons/custom HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", []),
}


@pytest.mark.parametrize(("head", "rest"), PROTOCOL_ABUSE.values(), ids=list(PROTOCOL_ABUSE))
def test_protocol_abuse_is_a_4xx_and_the_server_serves_on(client: httpx.Client, head: bytes, rest: list[bytes]) -> None:
    """uvicorn accepts a 100 kB header arriving in one piece, but not one that keeps coming (h11's 16 kB limit)."""
    status, answer, _ = raw_exchange(str(client.base_url), head, rest)
    assert status is not None and 400 <= status < 500, answer[:200]
    assert client.get("/healthz").status_code == 200
    assert muons_from(plain(client, 5)).shape == (5, 8)
