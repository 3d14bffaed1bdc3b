"""FairShip ROOT muon files, as ``shipgen/MuonBackGenerator.cxx`` reads them (DESIGN section 6).

A TTree (never an RNTuple) named ``pythia8-Geant4`` with float32 branches, positions in metres in
FairShip's frame, momenta in GeV, and one trailing all-zero row because the reader never simulates
the last entry. Our metadata rides along as a JSON ``TObjString``, which FairShip ignores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import uproot

from service.contract.muons import COLUMNS, DTYPE, SampleError, column, from_columns
from service.samples import reproducible
from service.samples.sample import Sample

TREE = "pythia8-Geant4"
METADATA_KEY = "muongan_metadata"
BRANCHES: tuple[str, ...] = ("id", "parentid", "pythiaid", "ecut", "w", "x", "y", "z", "px", "py", "pz")
Z_OFFSET_CM = 2084.5  # z_fairship[m] = (z_ours[cm] + Z_OFFSET_CM) / 100
_CM_PER_M = 100.0


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


def create(path: Path, metadata: dict[str, str], z_offset_cm: float = Z_OFFSET_CM) -> tuple[Any, Any]:
    """A new file with the empty FairShip tree and our metadata; call it, and every later write to the file,
    inside :func:`~service.samples.reproducible.pinned`, so that equal content makes equal bytes.

    uproot gets an open file, not the path, so it records no file name ("dynamic.root"): the bytes depend
    neither on the name nor on the temporary name a file is written under.
    """
    stored = {**metadata, "z_offset_cm": str(z_offset_cm)}
    handle = Path(path).open("w+b")  # noqa: SIM115 (uproot's file owns and closes it)
    file = uproot.recreate(handle, uuid_function=reproducible.uuid_of(stored))
    tree = file.mktree(TREE, {name: np.float32 for name in BRANCHES})
    file[METADATA_KEY] = json.dumps(stored, sort_keys=True)
    return file, tree


def write(sample: Sample, path: Path, z_offset_cm: float = Z_OFFSET_CM) -> None:
    with reproducible.pinned():
        file, tree = create(path, sample.metadata, z_offset_cm)
        with file:
            tree.extend(fairship_branches(sample.muons, z_offset_cm))


def read(source: str | Path | BinaryIO, z_offset_cm: float | None = None) -> Sample:
    """Read a FairShip tree into the canonical frame, dropping the trailing all-zero buffer row.

    ``z_offset_cm`` defaults to the one recorded by our writer, else FairShip's default.
    """
    try:
        file = uproot.open(source)
    except Exception as error:  # uproot raises many kinds of error for a file that is not ROOT
        raise SampleError(f"not a readable ROOT file: {error}") from None
    with file:
        if TREE not in file:
            raise SampleError(f"ROOT file has no {TREE!r} tree; it holds {', '.join(file.keys()) or 'nothing'}")
        try:
            tree = file[TREE]
        except Exception as error:  # a damaged file may fail only once the tree's own bytes are read
            raise SampleError(f"cannot read tree {TREE!r}: {error}") from None
        needed = ("id", "w", "x", "y", "z", "px", "py", "pz")
        missing = [name for name in needed if name not in tree]
        if missing:
            raise SampleError(f"tree {TREE!r} lacks branch(es) {', '.join(missing)}")
        try:
            data: dict[str, Any] = tree.arrays(needed, library="np")
            metadata = json.loads(str(file[METADATA_KEY])) if METADATA_KEY in file else {}
            offset = float(metadata.pop("z_offset_cm", Z_OFFSET_CM)) if z_offset_cm is None else z_offset_cm
        except Exception as error:
            raise SampleError(f"cannot read tree {TREE!r} and its metadata: {error}") from None
    columns = {name: np.asarray(data[name], dtype=np.float64) for name in needed}
    if len(columns["id"]) and all(values[-1] == 0 for values in columns.values()):
        columns = {name: values[:-1] for name, values in columns.items()}
    canonical = {
        "pdg": columns["id"],
        "x": columns["x"] * _CM_PER_M,
        "y": columns["y"] * _CM_PER_M,
        "z": columns["z"] * _CM_PER_M - offset,
        "px": columns["px"],
        "py": columns["py"],
        "pz": columns["pz"],
        "weight": columns["w"],
    }
    assert tuple(canonical) == COLUMNS
    return Sample(from_columns(canonical), metadata)
