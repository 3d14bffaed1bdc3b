"""What every part of the service, the client, the commands and ``training/`` agree on (DESIGN sections 2, 4, 9).

The muon columns and units (:mod:`~service.contract.muons`), the model folder's manifest
(:mod:`~service.contract.manifest`), the bounds every request respects (:mod:`~service.contract.bounds`)
and the four ways of asking for muons (:mod:`~service.contract.modes`). Light: numpy and pydantic only.
"""

from service.contract.bounds import MAX_AUX, MAX_PLOT_N, MAX_SCALE, MAX_SEED, MAX_SMEAR, MAX_START, MIN_SCALE
from service.contract.manifest import AUX_GROUPS, Manifest
from service.contract.modes import Boosted, Custom, Enhanced, Mode, Plain
from service.contract.muons import COLUMNS, DTYPE, PHYSICAL_COLUMNS, UNITS, SampleError

__all__ = [
    "AUX_GROUPS",
    "COLUMNS",
    "DTYPE",
    "MAX_AUX",
    "MAX_PLOT_N",
    "MAX_SCALE",
    "MAX_SEED",
    "MAX_SMEAR",
    "MAX_START",
    "MIN_SCALE",
    "PHYSICAL_COLUMNS",
    "UNITS",
    "Boosted",
    "Custom",
    "Enhanced",
    "Manifest",
    "Mode",
    "Plain",
    "SampleError",
]
