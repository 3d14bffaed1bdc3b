"""Sample files written block by block: memory stays one block whatever the number of muons.

``muongan generate`` and :meth:`service.client.MuonClient.save` stream muons into these. Each format
keeps the request's metadata (seed, start, n, model sha256, equivalent POT, ...) where the format has
room for it: the Arrow/Parquet schema, a ``TObjString`` next to the FairShip tree, or a JSON sidecar
``FILE.json`` for npy and CSV (the convention of :mod:`service.samples.npy`).

A file is written under a temporary name and renamed only once complete, so a batch job that dies
half-way never leaves a truncated file that looks like a finished shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from service.contract.muons import COLUMNS
from service.samples import format_from_suffix, root
from service.samples.arrow import SCHEMA
from service.samples.encoders import CsvEncoder, NpyEncoder, StreamEncoder
from service.samples.reproducible import pinned
from service.samples.root import Z_OFFSET_CM

FORMATS: tuple[str, ...] = ("npy", "parquet", "arrow", "csv", "root")
_SUFFIXES = {".csv": "csv"}


class Sink(Protocol):
    """Takes ``(k, 8)`` float32 blocks in order; ``close`` finishes the file."""

    def write(self, muons: np.ndarray) -> None: ...

    def close(self) -> None: ...


def file_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format of the suffix: .npy, .parquet, .arrow, .csv or .root (and aliases)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    return format_from_suffix(path, _SUFFIXES)


def record_batch(muons: np.ndarray, schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(muons[:, i]) for i in range(len(COLUMNS))], schema=schema)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


class _EncodedSink:
    """npy or CSV through the service's own encoders, so a file equals the HTTP body of the same request."""

    def __init__(self, file: BinaryIO, encoder: StreamEncoder) -> None:
        self._file, self._encoder = file, encoder
        file.write(encoder.start())

    def write(self, muons: np.ndarray) -> None:
        self._file.write(self._encoder.encode(muons))

    def close(self) -> None:
        self._file.write(self._encoder.finish())
        self._file.close()


class _ArrowSink:
    """Arrow IPC *file* format (random access, memory-mappable, what ``pyarrow.feather`` reads)."""

    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self._schema = SCHEMA.with_metadata(metadata)
        self._writer = ipc.new_file(str(path), self._schema)

    def write(self, muons: np.ndarray) -> None:
        self._writer.write_batch(record_batch(muons, self._schema))

    def close(self) -> None:
        self._writer.close()


class _ParquetSink:
    """Parquet, one row group per block, zstd as :mod:`service.samples.arrow` writes it."""

    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self._schema = SCHEMA.with_metadata(metadata)
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")

    def write(self, muons: np.ndarray) -> None:
        self._writer.write_batch(record_batch(muons, self._schema))

    def close(self) -> None:
        self._writer.close()


class _RootSink:
    """The FairShip ``pythia8-Geant4`` TTree, extended per block; the all-zero buffer row goes last.

    Written reproducibly (:mod:`service.samples.reproducible`): a file from ``--url`` equals, byte for byte,
    the file of the same request made in-process.
    """

    def __init__(self, path: Path, metadata: dict[str, str], z_offset_cm: float) -> None:
        with pinned():
            self._file, self._tree = root.create(path, metadata, z_offset_cm)
        self._z_offset_cm = z_offset_cm

    def write(self, muons: np.ndarray) -> None:
        if len(muons):
            branches = root.fairship_branches(muons, self._z_offset_cm)
            with pinned():
                self._tree.extend({name: values[:-1] for name, values in branches.items()})

    def close(self) -> None:
        with pinned():
            self._tree.extend(root.fairship_branches(np.empty((0, len(COLUMNS)), np.float32), self._z_offset_cm))
            self._file.close()


def _open(path: Path, fmt: str, n: int, metadata: dict[str, str], z_offset_cm: float) -> Sink:
    if fmt == "npy":
        return _EncodedSink(path.open("wb"), NpyEncoder(n))
    if fmt == "csv":
        return _EncodedSink(path.open("wb"), CsvEncoder())
    if fmt == "arrow":
        return _ArrowSink(path, metadata)
    if fmt == "parquet":
        return _ParquetSink(path, metadata)
    return _RootSink(path, metadata, z_offset_cm)


class _Counted:
    """A sink that refuses to finish with a row count other than the one promised."""

    def __init__(self, sink: Sink, n: int) -> None:
        self._sink, self.n, self.rows = sink, n, 0

    def write(self, muons: np.ndarray) -> None:
        self.rows += len(muons)
        if self.rows > self.n:
            raise ValueError(f"more muons than the {self.n} promised")
        self._sink.write(muons)

    def close(self) -> None:
        if self.rows != self.n:
            raise ValueError(f"stream ended after {self.rows} of {self.n} muons")
        self._sink.close()


@contextmanager
def open_sink(
    path: str | Path, n: int, metadata: dict[str, str], fmt: str | None = None, z_offset_cm: float = Z_OFFSET_CM
) -> Iterator[Sink]:
    """A sink for exactly ``n`` muons at ``path``; the file appears only if all of them were written.

    ``z_offset_cm`` is the FairShip frame offset of ROOT files (DESIGN section 6); other formats keep cm.
    """
    path = Path(path)
    fmt = file_format(path, fmt)
    partial = path.with_name(path.name + ".part")
    inner = _open(partial, fmt, n, metadata, z_offset_cm)
    sink = _Counted(inner, n)
    try:
        yield sink
        sink.close()
    except BaseException:
        with suppress(Exception):
            inner.close()  # release the file handle; the partial file goes anyway
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    if fmt in ("npy", "csv"):
        _sidecar(path).write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
