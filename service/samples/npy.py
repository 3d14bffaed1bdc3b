"""npy samples: the ``(n, 8)`` array (or ``(n, 7)`` without weights), metadata in a JSON sidecar file.

npy has no place for metadata, so ``FILE.npy`` keeps it in ``FILE.npy.json`` when there is any.
Arrays are always loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np

from service.contract.muons import COLUMNS, PHYSICAL_COLUMNS, SampleError, with_unit_weight
from service.samples.sample import Sample


def load_array(source: str | Path | BinaryIO) -> np.ndarray:
    """Load a numeric npy array, never unpickling, with errors a user can act on."""
    try:
        array = np.load(source, allow_pickle=False)
    except ValueError as error:  # numpy refuses object arrays with allow_pickle=False
        raise SampleError(f"npy content refused: {error}") from None
    except (OSError, EOFError) as error:
        raise SampleError(f"not a readable npy array: {error}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise SampleError(f"npy array must be numeric, got dtype {getattr(array, 'dtype', type(array))}")
    return array


def read(source: str | Path | BinaryIO) -> Sample:
    array = load_array(source)
    if array.ndim == 2 and array.shape[1] == len(PHYSICAL_COLUMNS):
        array = with_unit_weight(array)
    elif array.ndim != 2 or array.shape[1] != len(COLUMNS):
        raise SampleError(
            f"npy sample must have shape (n, 7) or (n, 8) with columns {', '.join(COLUMNS)}, got {array.shape}"
        )
    return Sample(array, metadata(source) if isinstance(source, str | Path) else {})


def metadata(path: str | Path) -> dict[str, str]:
    """The metadata of ``FILE.npy`` from its sidecar ``FILE.npy.json``, empty without one."""
    sidecar = _sidecar(Path(path))
    if not sidecar.exists():
        return {}
    try:
        loaded = json.loads(sidecar.read_text())
    except ValueError as error:
        raise SampleError(f"metadata file {sidecar.name} is not JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise SampleError(f"metadata file {sidecar.name} must hold a JSON object")
    return {str(k): str(v) for k, v in loaded.items()}


def write(sample: Sample, path: Path) -> None:
    np.save(path, sample.muons)
    if sample.metadata:
        _sidecar(path).write_text(json.dumps(sample.metadata, indent=1, sort_keys=True))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")
