"""A model folder appears whole or not at all.

``muongan train`` writes into a hidden folder beside the target (same file system, so a rename moves
it) and renames it into place only when everything is written: an interrupted run (Ctrl-C, an
exception, a failed export check) leaves the target as it was, never half a model that ``muongan
serve`` would load. Only a kill that gives Python no chance to clean up leaves the hidden
``.NAME.partial-*`` folder behind, and never under the target's name.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """An empty folder beside ``target`` to write into; it replaces ``target`` (whatever was there) when the
    block ends normally and is removed when it ends by an exception."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "partial")
    staging.mkdir()  # the usual permissions, as the folder it becomes would have had
    try:
        yield staging
        replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was renamed into place


def replace(source: Path, target: Path) -> None:
    """Rename ``source`` onto ``target``; an existing ``target`` is moved aside first and removed after, so
    the name never holds a mix of the two."""
    if not target.exists() and not target.is_symlink():
        source.rename(target)
        return
    old = _sibling(target, "old")
    target.rename(old)
    source.rename(target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def _sibling(target: Path, what: str) -> Path:
    return target.parent / f".{target.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}"
