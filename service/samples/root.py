"""FairShip ROOT muon files, read as ``shipgen/MuonBackGenerator.cxx`` reads them (DESIGN section 6).

A TTree (never an RNTuple) named ``pythia8-Geant4``, positions in metres in FairShip's frame, momenta
in GeV, and one trailing all-zero row because older FairShip never simulates the last entry. What
FairShip does with such a file, this reader does too:

- a tree with fewer than 17 leaves gives the muon in ``x, y, z, px, py, pz``; with 17 or more leaves
  the plain names hold a downstream plane and the muon's origin is in ``ox, oy, oz, opx, opy, opz``;
- rows with ``|id| != 13`` are not muons and are skipped (and counted, by id);
- the trailing all-zero buffer row is dropped (it is not counted as skipped: it is not a particle).

FairShip binds ``Float_t``; float64 branches (some private productions) are read as well. Files are
read in chunks of entries, so a production of any size streams through bounded memory. Our writer
adds our metadata as a JSON ``TObjString``, which FairShip ignores.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import uproot

from service.muons import COLUMNS, DTYPE, MUON_PDG, SampleError, column, from_columns
from service.samples.sample import Chunk, Sample

TREE = "pythia8-Geant4"
METADATA_KEY = "muongan_metadata"
BRANCHES: tuple[str, ...] = ("id", "parentid", "pythiaid", "ecut", "w", "x", "y", "z", "px", "py", "pz")
ORIGIN_LEAVES = 17  # MuonBackGenerator: "GetListOfLeaves()->GetSize() < 17" means no origin branches
Z_OFFSET_CM = 2084.5  # z_fairship[m] = (z_ours[cm] + Z_OFFSET_CM) / 100
CHUNK_ENTRIES = 1 << 20
_CM_PER_M = 100.0
_PLAIN = ("x", "y", "z", "px", "py", "pz")
_ORIGIN = ("ox", "oy", "oz", "opx", "opy", "opz")


def fairship_branches(muons: np.ndarray, z_offset_cm: float = Z_OFFSET_CM) -> dict[str, np.ndarray]:
    """The FairShip branches for canonical muons, with the all-zero buffer row appended.

    Arithmetic in float64 so that only the final float32 rounding remains: z and momenta round-trip
    exactly, x and y to within one float32 ulp (centimetres are not exact in float32 metres).
    """
    muons = muons.astype(np.float64)
    pdg = muons[:, column("pdg")]
    branches = {
        "id": pdg,
        "parentid": np.zeros_like(pdg),  # the parent is not known to the GAN
        "pythiaid": pdg,
        "ecut": np.zeros_like(pdg),
        "w": muons[:, column("weight")],
        "x": muons[:, column("x")] / _CM_PER_M,
        "y": muons[:, column("y")] / _CM_PER_M,
        "z": (muons[:, column("z")] + z_offset_cm) / _CM_PER_M,
        "px": muons[:, column("px")],
        "py": muons[:, column("py")],
        "pz": muons[:, column("pz")],
    }
    return {name: np.append(values, 0).astype(DTYPE) for name, values in branches.items()}


def write(sample: Sample, path: Path, z_offset_cm: float = Z_OFFSET_CM) -> None:
    with uproot.recreate(path) as file:
        tree = file.mktree(TREE, {name: np.float32 for name in BRANCHES})
        tree.extend(fairship_branches(sample.muons, z_offset_cm))
        file[METADATA_KEY] = json.dumps({**sample.metadata, "z_offset_cm": str(z_offset_cm)})


class FairShipTree:
    """An open ``pythia8-Geant4`` tree: its layout, our metadata if any, and its muons chunk by chunk.

    ``layout`` is ``"fairship-11"`` (origin in ``x..pz``), ``"fairship-17+"`` (origin in ``ox..opz``) or
    ``"muongan"`` (written by :func:`write`: the 11-leaf layout plus our metadata).
    """

    def __init__(self, source: str | Path | BinaryIO, z_offset_cm: float | None = None) -> None:
        try:
            self._file = uproot.open(source)
        except Exception as error:  # uproot raises many kinds of error for a file that is not ROOT
            raise SampleError(f"not a readable ROOT file: {_one_line(error)}") from None
        try:
            self._open(z_offset_cm)
        except BaseException:
            self._file.close()
            raise

    def _open(self, z_offset_cm: float | None) -> None:
        if TREE not in self._file:
            held = ", ".join(self._file.keys()) or "nothing"
            raise SampleError(f"ROOT file has no {TREE!r} tree; it holds {held}")
        try:
            self._tree = self._file[TREE]
            leaves = sum(len(branch.member("fLeaves")) for branch in self._tree.itervalues(recursive=True))
            self.metadata: dict[str, str] = (
                json.loads(str(self._file[METADATA_KEY])) if METADATA_KEY in self._file else {}
            )
        except Exception as error:  # a damaged file may fail only once the tree's own bytes are read
            raise SampleError(f"cannot read tree {TREE!r}: {_one_line(error)}") from None
        positions = _ORIGIN if leaves >= ORIGIN_LEAVES else _PLAIN
        self.layout = "fairship-17+" if leaves >= ORIGIN_LEAVES else "muongan" if self.metadata else "fairship-11"
        self._z_offset = float(self.metadata.pop("z_offset_cm", Z_OFFSET_CM)) if z_offset_cm is None else z_offset_cm
        self._branches = {"pdg": "id", "weight": "w", **dict(zip(_PLAIN, positions, strict=True))}
        missing = [name for name in self._branches.values() if name not in self._tree]
        if missing:
            raise SampleError(f"tree {TREE!r} ({self.layout} layout) lacks branch(es) {', '.join(missing)}")
        self.entries = int(self._tree.num_entries)

    def __enter__(self) -> FairShipTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def _branch(self, name: str, start: int, stop: int) -> np.ndarray:
        try:
            values = self._tree[name].array(entry_start=start, entry_stop=stop, library="np")
            return np.asarray(values, dtype=np.float64)
        except Exception as error:  # damaged baskets, jagged or non-numeric branches
            raise SampleError(f"cannot read branch {name!r} of tree {TREE!r}: {_one_line(error)}") from None

    def chunks(self, entries: int = CHUNK_ENTRIES) -> Iterator[Chunk]:
        """Muons in canonical units, ``entries`` tree entries at a time, buffer row dropped, non-muons skipped."""
        for start in range(0, self.entries, entries):
            stop = min(start + entries, self.entries)
            raw = {ours: self._branch(theirs, start, stop) for ours, theirs in self._branches.items()}
            if stop == self.entries and all(values[-1] == 0 for values in raw.values()):
                raw = {name: values[:-1] for name, values in raw.items()}
            muon = np.abs(raw["pdg"]) == MUON_PDG
            ids, counts = np.unique(raw["pdg"][~muon], return_counts=True)
            skipped = Counter(dict(zip(ids.astype(int).tolist(), counts.tolist(), strict=True)))
            canonical = {
                "pdg": raw["pdg"][muon],
                "x": raw["x"][muon] * _CM_PER_M,
                "y": raw["y"][muon] * _CM_PER_M,
                "z": raw["z"][muon] * _CM_PER_M - self._z_offset,
                "px": raw["px"][muon],
                "py": raw["py"][muon],
                "pz": raw["pz"][muon],
                "weight": raw["weight"][muon],
            }
            assert tuple(canonical) == COLUMNS
            try:
                muons = from_columns(canonical)
            except SampleError as error:
                raise SampleError(f"entries {start}-{stop - 1}: {error}") from None
            yield Chunk(muons, skipped)


def _one_line(error: Exception) -> str:
    """uproot's messages span lines (the file, the object path); an error here is one line."""
    return " ".join(str(error).split())


def read(source: str | Path | BinaryIO, z_offset_cm: float | None = None) -> Sample:
    """The muons of a whole FairShip file (uploads, small files); :class:`FairShipTree` streams large ones.

    ``z_offset_cm`` defaults to the one recorded by our writer, else FairShip's default.
    """
    with FairShipTree(source, z_offset_cm) as tree:
        parts = [chunk.muons for chunk in tree.chunks()]
        metadata: dict[str, Any] = tree.metadata
    muons = np.concatenate(parts) if parts else np.empty((0, len(COLUMNS)), DTYPE)
    return Sample(muons, metadata)
