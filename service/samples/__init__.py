"""Reading and writing muon samples: npy, Parquet, Arrow IPC and FairShip ROOT.

A thin public face (:func:`read_sample`, :func:`write_sample`) over one module per format, in the
manner of uproot. Every reader validates against the data contract before returning.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from service.contract.muons import SampleError
from service.samples import arrow, npy, root
from service.samples.sample import Sample

__all__ = ["FORMATS", "Sample", "SampleError", "detect_format", "read_sample", "write_sample"]

Source = str | Path | BinaryIO

_READERS: dict[str, Callable[[Source], Sample]] = {
    "npy": npy.read,
    "parquet": arrow.read_parquet,
    "arrow": arrow.read_ipc,
    "root": root.read,
}
_WRITERS: dict[str, Callable[[Sample, Path], None]] = {
    "npy": npy.write,
    "parquet": arrow.write_parquet,
    "arrow": arrow.write_ipc,
    "root": root.write,
}
FORMATS: tuple[str, ...] = tuple(_READERS)
_SUFFIXES = {
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".root": "root",
}
_MAGIC = (
    (b"\x93NUMPY", "npy"),
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"\xff\xff\xff\xff", "arrow"),  # IPC stream: continuation marker of the first message
    (b"root", "root"),
)


def format_from_suffix(path: str | Path, extra: Mapping[str, str] | None = None) -> str:
    """The format a file name implies, or a :class:`SampleError` listing the known suffixes.

    ``extra`` adds suffixes a caller writes but cannot read back as a sample (CSV), so that the list
    in the error is every suffix that works there.
    """
    suffixes = {**_SUFFIXES, **(extra or {})}
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise SampleError(f"cannot tell the format of {str(path)!r}: use one of {', '.join(sorted(suffixes))}")
    return suffixes[suffix]


def detect_format(head: bytes) -> str:
    """The format of a byte stream from its first bytes (uploads carry no file name to trust)."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    raise SampleError("unrecognised sample: expected npy, Parquet, Arrow IPC or ROOT content")


def read_sample(source: Source | bytes, fmt: str | None = None) -> Sample:
    """Read and validate a sample from a path, an open binary file or bytes.

    The format comes from ``fmt``, else the file suffix, else the content's magic bytes.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    if fmt is None:
        if isinstance(source, str | Path):
            fmt = format_from_suffix(source)
        else:
            position = source.tell()
            fmt = detect_format(source.read(8))
            source.seek(position)
    if fmt not in _READERS:
        raise SampleError(f"unknown sample format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _READERS[fmt](source)


def write_sample(sample: Sample, path: str | Path, fmt: str | None = None) -> None:
    """Write a sample; the format comes from ``fmt`` or the file suffix."""
    path = Path(path)
    fmt = fmt or format_from_suffix(path)
    if fmt not in _WRITERS:
        raise SampleError(f"unknown sample format {fmt!r}; expected one of {', '.join(FORMATS)}")
    _WRITERS[fmt](sample, path)
