"""Parquet and Arrow IPC samples: one float32 column per canonical name, metadata in the schema."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from service.contract.muons import COLUMNS, SampleError, from_columns
from service.samples.sample import Sample

SCHEMA = pa.schema([(name, pa.float32()) for name in COLUMNS])


def to_table(sample: Sample) -> pa.Table:
    """The sample as an Arrow table with its metadata attached to the schema."""
    arrays = [pa.array(sample.muons[:, i]) for i in range(len(COLUMNS))]
    return pa.Table.from_arrays(arrays, schema=SCHEMA.with_metadata(sample.metadata or None))


def from_table(table: pa.Table) -> Sample:
    """Validate an Arrow table against the contract; ``weight`` may be absent (then 1)."""
    columns = {name: table.column(name).to_numpy() for name in table.column_names}
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    metadata.pop("pandas", None)  # pandas' own bookkeeping, not ours
    return Sample(from_columns(columns), metadata)


def read_parquet(source: str | Path | BinaryIO) -> Sample:
    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError) as error:
        raise SampleError(f"not a readable Parquet file: {error}") from None
    return from_table(table)


def read_ipc(source: str | Path | BinaryIO) -> Sample:
    """Read either Arrow IPC flavour: the file format (``ARROW1`` magic) or the stream format."""
    try:
        stream = pa.memory_map(str(source)) if isinstance(source, str | Path) else source
        start = stream.tell()
        try:
            table = ipc.open_file(stream).read_all()
        except pa.ArrowInvalid:
            stream.seek(start)
            table = ipc.open_stream(stream).read_all()
    except (pa.ArrowException, OSError) as error:
        raise SampleError(f"not a readable Arrow IPC file or stream: {error}") from None
    return from_table(table)


def write_parquet(sample: Sample, path: Path) -> None:
    pq.write_table(to_table(sample), path, compression="zstd")


def write_ipc(sample: Sample, path: Path) -> None:
    with ipc.new_file(path, SCHEMA.with_metadata(sample.metadata or None)) as writer:
        writer.write_table(to_table(sample))
