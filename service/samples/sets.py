"""Sample sets: many files given as paths, folders and glob patterns, read one file and one chunk at a time.

A production is tens of files of millions of muons; nothing here holds more than one chunk of one
file. Every command that reads muons (``train --sample``, ``evaluate --reference``, ``plot --sample``,
``describe``) goes through :func:`expand` and :func:`chunks`, so they all accept the same PATHs and
give the same errors, each naming the file (and, for ROOT, the branch) at fault.
"""

from __future__ import annotations

import gc
import glob
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from service.contract.muons import COLUMNS, PHYSICAL_COLUMNS, SampleError, validate, with_unit_weight
from service.samples import arrow, format_from_suffix, npy, root
from service.samples.sample import Chunk

CHUNK_ROWS = 1 << 20
SUFFIXES = (".npy", ".parquet", ".pq", ".arrow", ".arrows", ".feather", ".ipc", ".root")


@dataclass(frozen=True)
class Member:
    """One file of a set: its format, the layout found in it and the metadata it carries."""

    path: Path
    fmt: str
    layout: str
    metadata: dict[str, str]


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """The sample files named by ``paths``: files as given, folders' sample files (recursively), globs.

    The result is sorted and free of repeats, so a set reads the same whatever order it was named in.
    A path that names nothing (a missing file, an empty folder, a glob matching no file) is an error.
    """
    if not paths:
        raise SampleError("no sample PATH given")
    found: set[Path] = set()
    for given in map(str, paths):
        path = Path(given)
        if path.is_dir():
            inside = {p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES}
            if not inside:
                raise SampleError(f"{given}: folder holds no sample file ({', '.join(SUFFIXES)})")
            found |= inside
        elif path.is_file():
            found.add(path)
        elif glob.has_magic(given):
            matched = {Path(p) for p in glob.glob(given, recursive=True) if Path(p).is_file()}
            if not matched:
                raise SampleError(f"{given}: the pattern matches no file")
            found |= matched
        else:
            raise SampleError(f"{given}: no such file or folder")
    return sorted(found)


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Prefix any sample error with the file it came from: in a set of 67 files, the file is the news."""
    try:
        yield
    except SampleError as error:
        raise SampleError(f"{path}: {error}") from None
    except OSError as error:
        raise SampleError(f"{path}: cannot read: {error.strerror or error}") from None


def member(path: Path) -> Member:
    """Format, layout and metadata of a file, read without its muons."""
    with _naming(path):
        fmt = format_from_suffix(path)
        if fmt == "root":
            with root.FairShipTree(path) as tree:
                return Member(path, fmt, tree.layout, tree.metadata)
        if fmt == "parquet":
            schema = _parquet(path).schema_arrow
        elif fmt == "arrow":
            schema = _ipc_batches(path)[0]
        else:
            return Member(path, fmt, fmt, npy.metadata(path))
        return Member(path, fmt, fmt, _schema_metadata(schema))


def chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """The validated muons of one file, about ``rows`` at a time (ROOT: entries), in file order."""
    with _naming(path):
        fmt = format_from_suffix(path)
        if fmt == "root":
            with root.FairShipTree(path) as tree:
                yield from tree.chunks(rows)
            # uproot's file, tree and branch objects refer to one another, so only the cyclic collector
            # frees them and the baskets they cache; a long pass allocates too few Python objects to run
            # it often, and without this the resident set grew by ~100 MB per 5e6-muon file (measured).
            gc.collect()
        elif fmt == "npy":
            yield from _npy_chunks(path, rows)
        else:
            batches = _parquet(path).iter_batches(batch_size=rows) if fmt == "parquet" else _ipc_batches(path)[1]
            start = 0
            for batch in batches:
                with _rows(start, batch.num_rows):
                    yield Chunk(arrow.from_table(pa.Table.from_batches([batch])).muons)
                start += batch.num_rows


@contextmanager
def _rows(start: int, n: int) -> Iterator[None]:
    """Row numbers in errors count from the file's start, not the chunk's."""
    try:
        yield
    except SampleError as error:
        raise SampleError(f"rows {start}-{start + n - 1}: {error}") from None


def _parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise SampleError(f"not a readable Parquet file: {error}") from None


def _ipc_batches(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Schema and record batches of either Arrow IPC flavour (file or stream), memory-mapped."""
    try:
        source = pa.memory_map(str(path))
        try:
            reader = ipc.open_file(source)
            return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            source.seek(0)
            stream = ipc.open_stream(source)
            return stream.schema, iter(stream)
    except (pa.ArrowException, OSError) as error:
        raise SampleError(f"not a readable Arrow IPC file or stream: {error}") from None


def _schema_metadata(schema: pa.Schema) -> dict[str, str]:
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    metadata.pop("pandas", None)
    return metadata


def _npy_chunks(path: Path, rows: int) -> Iterator[Chunk]:
    """Row blocks of an npy array read with plain reads (C order), so only the block being validated is
    resident: pages read through a map stay in the process's resident set (the whole file, in the end)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # the header; the data is read below
    except ValueError as error:
        raise SampleError(f"npy content refused: {error}") from None
    if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] not in (len(PHYSICAL_COLUMNS), len(COLUMNS)):
        raise SampleError(f"npy sample must be a numeric (n, 7) or (n, 8) array, got {array.dtype} {array.shape}")
    (n, width), dtype, offset, c_order = array.shape, array.dtype, array.offset, array.flags.c_contiguous
    for start in range(0, n, rows):
        count = min(rows, n - start)
        if c_order:
            part = np.fromfile(path, dtype=dtype, count=count * width, offset=offset + start * width * dtype.itemsize)
            part = part.reshape(count, width)
        else:  # a Fortran-order file (rare): rows are not contiguous on disk
            part = np.asarray(array[start : start + count])
        with _rows(start, len(part)):
            yield Chunk(validate(with_unit_weight(part) if part.shape[1] == len(PHYSICAL_COLUMNS) else part))


def muons_per_pot(metadata: dict[str, str]) -> float | None:
    """The file's ``muons_per_pot`` (sum of weights per proton on target), or None if it has no usable one."""
    try:
        value = float(metadata["muons_per_pot"])
    except (KeyError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None
