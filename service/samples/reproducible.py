"""Reproducible ROOT files: the same muons and metadata give the same bytes, whenever and wherever written.

uproot stamps every key and directory with the wall-clock time (ROOT's ``TDatime``, one-second
resolution) and the file with a fresh UUID, so two writes of one shard (``muongan generate --url`` and
``--model``, or a rerun of a failed batch job) differed in about twenty bytes and a checksum could not
tell them from different files. Inside :func:`pinned` every ``TDatime`` is ROOT's epoch, 1995-01-01
00:00:00 (as reproducible builds pin ``SOURCE_DATE_EPOCH``), and :func:`uuid_of` derives the UUID from
the file's metadata (seed, rows, model), so distinct shards keep distinct UUIDs. (The file's name, which
ROOT also records, is left out by :func:`service.samples.root.create`.)

uproot has no option for the time, so its one conversion to ``TDatime`` is wrapped once: it gives the
fixed stamp only inside :func:`pinned` (a context variable, so per thread and per task), and the real time
to every other uproot user in the process.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uproot

STAMP = datetime.datetime(1995, 1, 1)
_PINNED = contextvars.ContextVar("muongan_root_time_pinned", default=False)
_datetime_to_code: Callable[[datetime.datetime], int] = uproot._util.datetime_to_code


def _stamp(moment: datetime.datetime) -> int:
    return _datetime_to_code(STAMP if _PINNED.get() else moment)


uproot._util.datetime_to_code = _stamp


@contextmanager
def pinned() -> Iterator[None]:
    """uproot writes ``STAMP`` as every time stamp inside this block (serialisation may happen in any call)."""
    token = _PINNED.set(True)
    try:
        yield
    finally:
        _PINNED.reset(token)


def uuid_of(metadata: dict[str, Any]) -> Callable[[], uuid.UUID]:
    """uproot's ``uuid_function``: one UUID, a hash of the metadata (independent of its key order)."""
    fixed = uuid.uuid5(uuid.NAMESPACE_URL, "muongan:" + json.dumps(metadata, sort_keys=True))
    return lambda: fixed
