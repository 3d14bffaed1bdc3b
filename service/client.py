"""A small Python client for the muon service: stream muons into numpy, Arrow or a file.

    from service.client import MuonClient
    from service.contract.modes import Boosted

    with MuonClient("http://127.0.0.1:8000") as client:
        muons, info = client.muons(100_000, seed=1)              # (n, 8) float32 + headers
        table = client.table(10**6, seed=1, start=10**6)          # pyarrow.Table, metadata in its schema
        client.save("shard-7.root", 10**5, seed=1, start=7 * 10**5, mode=Boosted({"pt": 3}))

Muons always travel as an Arrow IPC stream and are decoded record batch by record batch as they
arrive, so memory holds one block (plus what the caller keeps). Every response's facts (muon count,
equivalent protons on target, model sha256, effective sample size) are in :class:`ResponseInfo`. A
4xx/5xx answer raises :class:`MuonServiceError` carrying the server's JSON ``detail``; a 429 (server
busy) is retried after the server's ``Retry-After`` a few times first.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from service.contract.modes import Boosted, Custom, Enhanced, Mode, Plain
from service.contract.muons import COLUMNS, DTYPE
from service.samples.root import Z_OFFSET_CM
from service.samples.sinks import open_sink

ARROW = "application/vnd.apache.arrow.stream"
NPY = "application/x-npy"
# Generous read timeout: it bounds the wait for the *next* chunk, and weighted modes sum their weights
# before the first byte.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class MuonServiceError(RuntimeError):
    """The service answered with an error; ``detail`` is its JSON ``detail`` (a string, or FastAPI's list)."""

    def __init__(self, status_code: int, detail: Any, method: str, url: str, retry_after: float | None = None) -> None:
        self.status_code, self.detail, self.retry_after = status_code, detail, retry_after
        super().__init__(f"{method} {url} -> HTTP {status_code}: {_describe(detail)}")


def _describe(detail: Any) -> str:
    """FastAPI's validation errors (a list of ``{loc, msg}``) as one readable line."""
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict) and "msg" in error:
                where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "body"))
                parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
            else:
                parts.append(str(error))
        return "; ".join(parts)
    return str(detail)


@dataclass(frozen=True)
class ResponseInfo:
    """What a muon response's headers say about its body."""

    count: int
    equivalent_pot: float
    model_sha256: str
    seed: int
    start: int
    effective_sample_size: float | None
    headers: dict[str, str] = field(repr=False)

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> ResponseInfo:
        ess = headers.get("x-effective-sample-size")
        return cls(
            count=int(headers["x-muon-count"]),
            equivalent_pot=float(headers["x-equivalent-pot"]),
            model_sha256=headers["x-model-sha256"],
            seed=int(headers["x-seed"]),
            start=int(headers["x-start"]),
            effective_sample_size=None if ess is None else float(ess),
            headers=dict(headers),
        )


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (what pyarrow's stream reader wants)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._chunk:
            try:
                self._chunk = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


class MuonStream:
    """An open muon response: its headers now, its body as bytes, Arrow record batches or numpy blocks."""

    def __init__(self, response: httpx.Response, fmt: str) -> None:
        self.response = response
        self.format = fmt
        self.info = ResponseInfo.from_headers(response.headers)
        self._reader: ipc.RecordBatchStreamReader | None = None

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives, in the requested format."""
        return self.response.iter_bytes()

    @property
    def reader(self) -> ipc.RecordBatchStreamReader:
        """pyarrow's reader over the body (format ``arrow``); opening it waits for the first block."""
        if self.format != "arrow":
            raise ValueError(f"record batches need format 'arrow', this stream is {self.format!r}")
        if self._reader is None:
            self._reader = ipc.open_stream(io.BufferedReader(_ChunkReader(self.iter_bytes()), 1 << 20))
        return self._reader

    @property
    def metadata(self) -> dict[str, str]:
        """The Arrow schema's metadata: seed, start, n, model, mode settings, equivalent POT, units."""
        return {k.decode(): v.decode() for k, v in (self.reader.schema.metadata or {}).items()}

    def batches(self) -> Iterator[pa.RecordBatch]:
        return iter(self.reader)

    def blocks(self) -> Iterator[np.ndarray]:
        """The muons as ``(k, 8)`` float32 arrays in canonical column order, one per record batch."""
        for batch in self.batches():
            block = np.empty((batch.num_rows, len(COLUMNS)), dtype=DTYPE)
            for i in range(len(COLUMNS)):
                block[:, i] = batch.column(i).to_numpy()
            yield block


class MuonClient:
    """Client of one muon service. ``api_key`` is sent as ``Authorization: Bearer`` (for gateways in front)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        busy_retries: int = 5,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        self.busy_retries = busy_retries

    def __enter__(self) -> MuonClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Requests.

    def _build(self, mode: Mode, n: int | None, seed: int, start: int, fmt: str) -> httpx.Request:
        query: dict[str, Any] = {"seed": seed, "start": start, "format": fmt}
        if isinstance(mode, Custom):
            if n is not None and n != len(mode.aux):
                raise ValueError(f"custom mode makes one muon per aux row ({len(mode.aux)}), not n={n}")
            return self._http.build_request(
                "POST", "/v1/muons/custom", params=query, content=_npy(mode.aux), headers={"Content-Type": NPY}
            )
        if n is None:
            raise ValueError(f"{mode.name} mode needs n")
        if isinstance(mode, Plain):
            return self._http.build_request("GET", "/v1/muons", params={"n": n, **query})
        if isinstance(mode, Boosted):
            body = {"n": n, **query, "scale": mode.scale}
            return self._http.build_request("POST", "/v1/muons/boosted", json=body)
        assert isinstance(mode, Enhanced)
        options = {"plain_fraction": mode.plain_fraction} | ({} if mode.smear is None else {"smear": mode.smear})
        return self._http.build_request(
            "POST",
            "/v1/muons/enhanced",
            params={"n": n, **query, **options},
            content=_npy(mode.seeds),
            headers={"Content-Type": NPY},
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        """Send with a streamed body; wait out 429s; raise :class:`MuonServiceError` on any other error."""
        for attempt in range(self.busy_retries + 1):
            response = self._http.send(request, stream=True)
            if response.status_code < 400:
                return response
            response.read()
            response.close()
            retry_after = _float_or_none(response.headers.get("retry-after"))
            if response.status_code == 429 and attempt < self.busy_retries:
                time.sleep(retry_after or 1.0)
                continue
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text or response.reason_phrase
            raise MuonServiceError(response.status_code, detail, request.method, str(request.url), retry_after)
        raise AssertionError("unreachable")

    @contextmanager
    def stream(
        self, n: int | None, seed: int = 0, start: int = 0, mode: Mode | None = None, format: str = "arrow"
    ) -> Iterator[MuonStream]:
        """Open a muon response; rows ``[start, start + n)`` of ``seed``'s stream in ``mode`` (default plain)."""
        request = self._build(mode or Plain(), n, seed, start, format)
        response = self._send(request)
        try:
            yield MuonStream(response, format)
        finally:
            response.close()

    def muons(
        self, n: int | None, seed: int = 0, start: int = 0, mode: Mode | None = None
    ) -> tuple[np.ndarray, ResponseInfo]:
        """The muons as one ``(n, 8)`` float32 array (filled block by block), and the response's facts."""
        with self.stream(n, seed, start, mode) as stream:
            muons = np.empty((stream.info.count, len(COLUMNS)), dtype=DTYPE)
            row = 0
            for block in stream.blocks():
                muons[row : row + len(block)] = block
                row += len(block)
            if row != len(muons):
                raise MuonServiceError(200, f"body held {row} of {len(muons)} muons", "GET", str(stream.response.url))
            return muons, stream.info

    def table(self, n: int | None, seed: int = 0, start: int = 0, mode: Mode | None = None) -> pa.Table:
        """The muons as a ``pyarrow.Table`` (one chunk per block); the schema metadata holds the facts."""
        with self.stream(n, seed, start, mode) as stream:
            table = stream.reader.read_all()
            if table.num_rows != stream.info.count:  # pyarrow takes a stream cut after a batch as complete
                url = str(stream.response.url)
                raise MuonServiceError(200, f"body held {table.num_rows} of {stream.info.count} muons", "GET", url)
            return table

    def save(
        self,
        path: str | Path,
        n: int | None,
        seed: int = 0,
        start: int = 0,
        mode: Mode | None = None,
        fmt: str | None = None,
        z_offset_cm: float = Z_OFFSET_CM,
        progress: Callable[[int], object] | None = None,
    ) -> tuple[ResponseInfo, dict[str, str]]:
        """Stream muons into a file (npy, Parquet, Arrow, CSV or FairShip ROOT, by ``fmt`` or suffix).

        Memory stays one block for any ``n``; ``progress`` is called with each block's row count. The
        file appears only when complete. Returns the response's facts and the metadata written.
        """
        with self.stream(n, seed, start, mode) as stream:
            metadata = stream.metadata
            with open_sink(path, stream.info.count, metadata, fmt, z_offset_cm) as sink:
                for block in stream.blocks():
                    sink.write(block)
                    if progress is not None:
                        progress(len(block))
            return stream.info, metadata

    # Other routes.

    def model(self) -> dict[str, Any]:
        """The served model's manifest, plus how it is served (provider, sha256)."""
        response = self._send(self._http.build_request("GET", "/v1/model"))
        response.read()
        result: dict[str, Any] = response.json()
        return result

    def plot(self, kind: str = "kinematics", n: int = 100_000, seed: int = 0, start: int = 0) -> bytes:
        """A PNG of plain muons (``kind`` ``kinematics`` or ``p_pt``), made by the server."""
        params: dict[str, str | int] = {"kind": kind, "n": n, "seed": seed, "start": start}
        response = self._send(self._http.build_request("GET", "/v1/plot", params=params))
        return response.read()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _float_or_none(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
