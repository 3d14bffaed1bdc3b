"""The muon data contract (DESIGN section 2): one row per muon, float32, canonical column order.

Samples travel through the code as a plain ``(n, 8)`` float32 array in :data:`COLUMNS` order, because
every consumer (onnxruntime, Arrow, npy, uproot) wants contiguous columns of one dtype anyway.
"""

from __future__ import annotations

import numpy as np

PHYSICAL_COLUMNS: tuple[str, ...] = ("pdg", "x", "y", "z", "px", "py", "pz")
COLUMNS: tuple[str, ...] = (*PHYSICAL_COLUMNS, "weight")
UNITS: dict[str, str] = {
    "pdg": "",
    "x": "cm",
    "y": "cm",
    "z": "cm",
    "px": "GeV/c",
    "py": "GeV/c",
    "pz": "GeV/c",
    "weight": "",
}
DTYPE = np.float32
MUON_PDG = 13  # mu- is +13, mu+ is -13 (PDG convention)


class SampleError(ValueError):
    """A sample that breaks the data contract; the message names the offending column and row."""


def column(name: str) -> int:
    """Index of a canonical column, with an error that lists the valid names."""
    try:
        return COLUMNS.index(name)
    except ValueError:
        raise SampleError(f"unknown column {name!r}; expected one of {', '.join(COLUMNS)}") from None


def from_columns(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Stack named 1-D columns into the canonical array; ``weight`` defaults to 1, others are required."""
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise SampleError(f"unknown column(s) {', '.join(unknown)}; expected {', '.join(COLUMNS)}")
    missing = [name for name in PHYSICAL_COLUMNS if name not in columns]
    if missing:
        raise SampleError(f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise SampleError(f"columns have different lengths: {lengths}")
    n = next(iter(lengths.values()))
    muons = np.empty((n, len(COLUMNS)), dtype=DTYPE)
    for i, name in enumerate(COLUMNS):
        muons[:, i] = columns.get(name, 1.0)
    return validate(muons)


def with_unit_weight(physical: np.ndarray) -> np.ndarray:
    """Append a weight column of ones to an ``(n, 7)`` array of physical columns."""
    muons = np.empty((len(physical), len(COLUMNS)), dtype=DTYPE)
    muons[:, : len(PHYSICAL_COLUMNS)] = physical
    muons[:, -1] = 1.0
    return muons


def validate(muons: np.ndarray) -> np.ndarray:
    """Check the contract and return the array as float32; raise :class:`SampleError` naming the first bad cell.

    Checked: shape ``(n, 8)``, finite values, ``|pdg| == 13`` and positive weights. A sample may be empty.
    """
    if muons.ndim != 2 or muons.shape[1] != len(COLUMNS):
        raise SampleError(f"expected an (n, {len(COLUMNS)}) array of {', '.join(COLUMNS)}, got shape {muons.shape}")
    muons = np.ascontiguousarray(muons, dtype=DTYPE)
    bad_rows, bad_cols = np.nonzero(~np.isfinite(muons))
    if len(bad_rows):
        row, col = bad_rows[0], bad_cols[0]
        raise SampleError(f"non-finite value {muons[row, col]} in column {COLUMNS[col]!r} at row {row}")
    _first_violation(np.abs(muons[:, 0]) != MUON_PDG, muons[:, 0], "pdg", "must be +13 or -13")
    _first_violation(muons[:, -1] <= 0, muons[:, -1], "weight", "must be positive")
    return muons


def _first_violation(bad: np.ndarray, values: np.ndarray, name: str, rule: str) -> None:
    rows = np.flatnonzero(bad)
    if len(rows):
        raise SampleError(f"column {name!r} {rule}: {values[rows[0]]} at row {rows[0]} ({len(rows)} rows in all)")
