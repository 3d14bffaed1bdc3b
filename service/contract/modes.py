"""The four ways of asking for muons (DESIGN section 4), as values shared by the client and the CLI.

A mode says how the latent inputs are made: plain, boosted (wider aux marginals), custom (the user's aux
array) or enhanced (around seed muons). The same value is sent over HTTP by :mod:`service.client` and
run in-process by ``muongan generate --model``; :func:`engine_source` maps it onto the engine exactly as
the service's routes do, so both paths make the same muons and the same metadata. Each value checks the
bounds of :mod:`service.contract.bounds` when it is made, so what the server refuses is refused before sending, and
in-process, with the same limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from service.contract.bounds import MAX_AUX, MAX_SCALE, MAX_SMEAR, MIN_SCALE
from service.contract.manifest import AUX_GROUPS
from service.contract.muons import COLUMNS, PHYSICAL_COLUMNS, SampleError

if TYPE_CHECKING:
    from service.engine.generation import Engine, LatentSource


@dataclass(frozen=True)
class Plain:
    """Aux from the training copula, weight 1: the muons of the training sample's population."""

    name = "plain"


@dataclass(frozen=True)
class Boosted:
    """Aux marginals widened per group (``{"pt": 3}``; groups left out stay 1); exact importance weights."""

    scale: dict[str, float] = field(default_factory=dict)
    name = "boosted"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.scale) - set(AUX_GROUPS))
        if unknown:
            raise ValueError(f"unknown aux group(s) {', '.join(unknown)}; groups are {', '.join(AUX_GROUPS)}")
        bad = {group: value for group, value in self.scale.items() if not MIN_SCALE <= value <= MAX_SCALE}
        if bad:
            raise ValueError(f"aux scales must be in [{MIN_SCALE:g}, {MAX_SCALE:g}] (1 = plain), got {bad}")

    def scales(self, groups: list[str] | tuple[str, ...] = AUX_GROUPS) -> list[float]:
        return [float(self.scale.get(group, 1.0)) for group in groups]


@dataclass(frozen=True, eq=False)
class Custom:
    """One muon per row of the user's ``(n, 4)`` aux array (columns xy, z, pt, pz); weight 1, not physical."""

    aux: np.ndarray
    name = "custom"

    def __post_init__(self) -> None:
        aux = np.asarray(self.aux, dtype=np.float32)
        if aux.ndim != 2 or aux.shape[1] != len(AUX_GROUPS) or len(aux) == 0:
            raise ValueError(f"aux must be a non-empty (n, {len(AUX_GROUPS)}) array ({', '.join(AUX_GROUPS)})")
        if not np.all(np.isfinite(aux) & (aux >= 0) & (aux <= MAX_AUX)):
            raise ValueError(f"aux values must be finite, >= 0 and <= {MAX_AUX:g}")
        object.__setattr__(self, "aux", np.ascontiguousarray(aux))


@dataclass(frozen=True, eq=False)
class Enhanced:
    """Muons like the seed muons ``(m, 7 or 8)`` in canonical columns; importance-weighted, with an ESS.

    ``smear`` is the Gaussian smearing in the copula's normal space (``None``: Scott's rule);
    ``plain_fraction`` the share drawn from the plain distribution, which caps weights at its inverse.
    """

    seeds: np.ndarray
    smear: float | None = None
    plain_fraction: float = 0.1
    name = "enhanced"

    def __post_init__(self) -> None:
        seeds = np.asarray(self.seeds, dtype=np.float32)
        if seeds.ndim != 2 or seeds.shape[1] not in (len(PHYSICAL_COLUMNS), len(COLUMNS)) or len(seeds) == 0:
            raise SampleError(f"seed muons must be a non-empty (m, 7) or (m, 8) array of {', '.join(COLUMNS)}")
        if self.smear is not None and not 0 < self.smear <= MAX_SMEAR:
            raise ValueError(f"smear must be in (0, {MAX_SMEAR:g}], got {self.smear}")
        if not 0 <= self.plain_fraction < 1:
            raise ValueError(f"plain_fraction must be in [0, 1), got {self.plain_fraction}")
        object.__setattr__(self, "seeds", np.ascontiguousarray(seeds))


Mode = Plain | Boosted | Custom | Enhanced


def engine_source(engine: Engine, mode: Mode) -> tuple[LatentSource, dict[str, str]]:
    """The engine's latent source for a mode, and the mode's settings as the service records them."""
    groups = list(engine.manifest.aux_groups)
    if isinstance(mode, Plain):
        return engine.plain_source(), {}
    if isinstance(mode, Boosted):
        scale = mode.scales(groups)
        return engine.boosted_source(scale), {"scale": json.dumps(dict(zip(groups, scale, strict=True)))}
    if isinstance(mode, Custom):
        return engine.custom_source(mode.aux), {}
    source = engine.seed_source(mode.seeds, mode.smear, mode.plain_fraction)
    settings = {
        "seeds": str(len(mode.seeds)),
        "clipped_seeds": str(source.clipped_seeds),
        "smear": repr(source.proposal.sigma),
        "plain_fraction": repr(mode.plain_fraction),
    }
    return source, settings
