"""Request bodies: read within a size limit, then parsed into a custom aux array or seed muons.

The size limit is enforced while the body arrives (a declared ``Content-Length`` over the limit is
refused before reading anything), so an oversized upload never sits in memory. npy is always loaded
with ``allow_pickle=False``. Every problem becomes an ``HTTPException`` whose detail names it.
"""

from __future__ import annotations

import io
from tokenize import TokenError

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
from fastapi import HTTPException, Request

from service.contract.bounds import MAX_AUX
from service.contract.muons import SampleError
from service.samples import detect_format, read_sample
from service.samples.npy import load_array

# Media types of uploads, and the sample format each one names.
UPLOAD_TYPES: dict[str, str] = {
    "application/x-npy": "npy",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/x-root": "root",
}
AUX_FORMATS = ("npy", "arrow")
SEED_FORMATS = ("npy", "arrow", "parquet", "root")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {declared} bytes exceeds this server's limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds this server's limit of {limit} bytes")
        chunks.append(chunk)
    if size == 0:
        raise HTTPException(422, "request body is empty; send the array or sample as the body")
    return b"".join(chunks)


def body_format(request: Request, body: bytes, allowed: tuple[str, ...]) -> str:
    """The upload's format: from its media type when it names one, else from its first bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    send = f"send {accepted(allowed)}, with that media type as Content-Type"
    fmt = UPLOAD_TYPES.get(media_type)
    if fmt is None:
        try:
            fmt = detect_format(body[:8])
        except SampleError:
            sent = f"a {media_type}" if media_type else "an untyped"
            raise HTTPException(415, f"cannot tell the format of {sent} body: {send}") from None
    if fmt not in allowed:
        raise HTTPException(415, f"{fmt} is not accepted here; {send}")
    return fmt


def accepted(formats: tuple[str, ...]) -> str:
    """Each format once, with the media types that name it: ``npy (application/x-npy), arrow (... or ...)``."""
    return ", ".join(
        f"{fmt} ({' or '.join(media for media, named in UPLOAD_TYPES.items() if named == fmt)})" for fmt in formats
    )


def parse_aux(body: bytes, fmt: str, groups: list[str], max_rows: int) -> np.ndarray:
    """A custom aux array ``(n, len(groups))`` float32: finite, non-negative, 1 to ``max_rows`` rows.

    npy: a 2-D numeric array, columns in ``groups`` order. Arrow (IPC file or stream): a column per group,
    by name; other columns are refused so that a misnamed column is not silently ignored.
    """
    try:
        aux = _npy_array(body) if fmt == "npy" else _arrow_aux(body, groups)
    except SampleError as error:
        raise HTTPException(422, f"aux upload: {error}") from None
    if aux.ndim != 2 or aux.shape[1] != len(groups):
        raise HTTPException(
            422, f"aux must have shape (n, {len(groups)}) with columns {', '.join(groups)}; got {aux.shape}"
        )
    if not 1 <= len(aux) <= max_rows:
        raise HTTPException(422, f"aux must have 1 to {max_rows} rows (one muon each); got {len(aux)}")
    aux = aux.astype(np.float32)
    bad = np.argwhere(~np.isfinite(aux) | (aux < 0) | (aux > MAX_AUX))
    if len(bad):
        row, col = bad[0]
        raise HTTPException(
            422,
            f"aux must be finite, >= 0 and <= {MAX_AUX:g}: {aux[row, col]} in column {groups[col]!r} at row {row} "
            f"({len(bad)} bad values in all)",
        )
    return aux


def check_npy_size(body: bytes) -> None:
    """Refuse an npy body whose header promises more (or less) data than it holds.

    numpy allocates the whole array the header describes before reading it, so a 100-byte body claiming
    a terabyte would otherwise end in a ``MemoryError`` instead of a clear 422.
    """
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise SampleError(f"npy format version {version} is not supported; use 1.0 or 2.0 (numpy.save)")
    except (ValueError, SyntaxError, TokenError) as error:  # numpy tokenizes a damaged header before giving up
        raise SampleError(f"not a readable npy header: {error}") from None
    if dtype.hasobject:
        raise SampleError("npy arrays of Python objects are refused (they would need unpickling)")
    promised = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if promised != len(body) - stream.tell():
        raise SampleError(
            f"npy header promises {promised} bytes of {shape} data, the body holds {len(body) - stream.tell()}"
        )


def _npy_array(body: bytes) -> np.ndarray:
    check_npy_size(body)
    return load_array(io.BytesIO(body))


def _arrow_aux(body: bytes, groups: list[str]) -> np.ndarray:
    try:
        table = _read_ipc(body)
    except (pa.ArrowException, OSError) as error:
        raise SampleError(f"not a readable Arrow IPC file or stream: {error}") from None
    names = set(table.column_names)
    if names != set(groups):
        raise SampleError(
            f"Arrow aux needs exactly the columns {', '.join(groups)}; got {', '.join(table.column_names)}"
        )
    try:
        return np.column_stack([table.column(name).to_numpy().astype(np.float64) for name in groups])
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise SampleError(f"Arrow aux columns must be numeric without nulls: {error}") from None


def _read_ipc(body: bytes) -> pa.Table:
    try:
        return ipc.open_file(pa.BufferReader(body)).read_all()
    except pa.ArrowInvalid:
        return ipc.open_stream(pa.BufferReader(body)).read_all()


def parse_seeds(body: bytes, fmt: str, max_rows: int) -> np.ndarray:
    """Seed muons ``(m, 8)`` from any sample format the contract knows, validated, 1 to ``max_rows`` rows."""
    try:
        if fmt == "npy":
            check_npy_size(body)
        muons = read_sample(body, fmt).muons
    except SampleError as error:
        raise HTTPException(422, f"seed muons: {error}") from None
    if not 1 <= len(muons) <= max_rows:
        raise HTTPException(422, f"seed sample must hold 1 to {max_rows} muons; got {len(muons)}")
    return muons
