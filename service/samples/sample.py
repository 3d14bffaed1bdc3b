"""A muon sample: the canonical array plus the string metadata that travels with it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from service.contract.muons import validate


@dataclass(frozen=True)
class Sample:
    """Muons as an ``(n, 8)`` float32 array in canonical column order, and free-form string metadata.

    Metadata carries what must stay with the muons, above all ``muons_per_pot`` (sum of weights per
    proton on target) and the settings that made them.
    """

    muons: np.ndarray
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "muons", validate(self.muons))

    def __len__(self) -> int:
        return len(self.muons)


@dataclass(frozen=True)
class Chunk:
    """Validated canonical muons of one run of rows of a file, and the non-muon rows skipped there, by id."""

    muons: np.ndarray
    skipped: Counter[int] = field(default_factory=Counter)
