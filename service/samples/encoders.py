"""Response body encoders (DESIGN section 6): Arrow IPC stream, npy and CSV streamed block by block; ROOT whole.

A streaming encoder turns each ``(k, 8)`` float32 block into bytes as it comes, so a response of any
length needs memory for one block only. Each format is written by its own library (pyarrow, numpy's
npy header, pyarrow's CSV writer, uproot), so clients can read it with that library.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as ipc

from service.contract.muons import COLUMNS, DTYPE
from service.samples import root
from service.samples.arrow import SCHEMA
from service.samples.sample import Sample

MEDIA_TYPES: dict[str, str] = {
    "arrow": "application/vnd.apache.arrow.stream",
    "npy": "application/x-npy",
    "csv": "text/csv",
    "root": "application/x-root",
}
STREAMED = ("arrow", "npy", "csv")
_NPY_DESCR = np.dtype(DTYPE).newbyteorder("<").str


class StreamEncoder(Protocol):
    """Bytes for the start of the body, for each block, and for its end."""

    def start(self) -> bytes: ...

    def encode(self, muons: np.ndarray) -> bytes: ...

    def finish(self) -> bytes: ...


class _Drain(io.BytesIO):
    """A sink that hands over what has been written since it was last drained."""

    def drain(self) -> bytes:
        data = self.getvalue()
        self.seek(0)
        self.truncate()
        return data


def _batch(muons: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(muons[:, i]) for i in range(len(COLUMNS))], schema=schema)


class ArrowEncoder:
    """Arrow IPC stream: the schema (with ``metadata``) and one record batch per block."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self._schema = SCHEMA.with_metadata(metadata)
        self._sink = _Drain()
        self._writer = ipc.new_stream(self._sink, self._schema)

    def start(self) -> bytes:
        return b""  # pyarrow writes the schema with the first batch

    def encode(self, muons: np.ndarray) -> bytes:
        self._writer.write_batch(_batch(muons, self._schema))
        return self._sink.drain()

    def finish(self) -> bytes:
        self._writer.close()
        return self._sink.drain()


class NpyEncoder:
    """npy version 1.0: the header states the shape ``(n, 8)`` up front, then raw little-endian float32 rows."""

    def __init__(self, n: int) -> None:
        self._n = n

    def start(self) -> bytes:
        header = io.BytesIO()
        header_data = {"descr": _NPY_DESCR, "fortran_order": False, "shape": (self._n, len(COLUMNS))}
        np.lib.format.write_array_header_1_0(header, header_data)
        return header.getvalue()

    def encode(self, muons: np.ndarray) -> bytes:
        return np.ascontiguousarray(muons, dtype=_NPY_DESCR).tobytes()

    def finish(self) -> bytes:
        return b""


class CsvEncoder:
    """CSV with a header line of the canonical column names; floats in their shortest exact form."""

    _OPTIONS = pa_csv.WriteOptions(include_header=False)

    def start(self) -> bytes:
        return (",".join(COLUMNS) + "\n").encode()

    def encode(self, muons: np.ndarray) -> bytes:
        sink = io.BytesIO()
        pa_csv.write_csv(_batch(muons, SCHEMA), sink, self._OPTIONS)
        return sink.getvalue()

    def finish(self) -> bytes:
        return b""


def stream_encoder(fmt: str, n: int, metadata: dict[str, str]) -> StreamEncoder:
    """The streaming encoder of a format; ``metadata`` goes where the format has room for it (Arrow)."""
    if fmt == "arrow":
        return ArrowEncoder(metadata)
    if fmt == "npy":
        return NpyEncoder(n)
    if fmt == "csv":
        return CsvEncoder()
    raise ValueError(f"format {fmt!r} is not streamed; streamed formats are {', '.join(STREAMED)}")


def root_file(muons: np.ndarray, metadata: dict[str, str]) -> bytes:
    """A whole FairShip ROOT file (``pythia8-Geant4`` TTree) holding ``muons``, as bytes.

    uproot writes to a seekable file, so the file is built in a temporary directory and read back.
    """
    with tempfile.TemporaryDirectory(prefix="muongan-") as folder:
        path = Path(folder) / "muons.root"
        root.write(Sample(muons, metadata), path)
        return path.read_bytes()
