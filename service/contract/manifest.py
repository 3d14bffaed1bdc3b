"""``model.json``: everything the service knows about a model folder (DESIGN section 1).

The model folder is the contract between training and serving: ``generator.onnx``,
``discriminator.onnx`` and this manifest. Tensor names are fixed here so that any ONNX runtime can
feed the graphs by name (tf2onnx may reorder them).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.contract.bounds import MAX_AUX

SCHEMA_VERSION: Literal[1] = 1
MANIFEST = "model.json"
GENERATOR = "generator.onnx"
DISCRIMINATOR = "discriminator.onnx"

# Generator: noise (n, noise_dim), aux (n, 4), charge (n, 1) -> muons (n, 7); all float32.
# charge is +1 for mu+ (pdg -13) and -1 for mu- (pdg +13), so pdg = -13 * charge.
GENERATOR_INPUTS = ("noise", "aux", "charge")
GENERATOR_OUTPUT = "muons"
# Discriminator: muons (n, 7) -> p_real (n, 1), aux (n, 4).
DISCRIMINATOR_INPUT = "muons"
DISCRIMINATOR_OUTPUTS = ("p_real", "aux")
AUX_GROUPS = ("xy", "z", "pt", "pz")
# What every response says of a model whose model.json predates the beam_spot record.
UNKNOWN_BEAM_SPOT = "unknown"
UNKNOWN_FAIRSHIP_FLAGS = "unknown: model.json has no beam_spot record; see training_sample"


class BeamSpot(BaseModel):
    """Whether a model's muons carry FairShip's beam spot, and the FairShip flags that go with that.

    SHiP's production files store muons at their production vertex, without a spot, and FairShip's
    ``MuonBackGenerator`` paints one as it reads them (``--SmearBeam 0.8 --PaintBeam 5``, its defaults): a
    "spotless" model goes with those defaults. A model trained on spot-painted muons ("painted") already
    carries the spot, so FairShip must paint none (``--SmearBeam 0 --PaintBeam 0``) or it is applied twice.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    convention: Literal["painted", "spotless"]
    # Printable ASCII: it travels as an HTTP header value.
    fairship_flags: str = Field(pattern=r"^[ -~]+$", description="run_simScript.py flags for this model's muons")
    description: str = Field(default="", description="One sentence for a user")
    source: str = Field(default="", description="How training knew: sample metadata, or the start radii")


class Manifest(BaseModel):
    """The parsed ``model.json``; unknown keys are kept so newer manifests still load."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    columns: list[str] = Field(description="Generator output columns, in order")
    units: dict[str, str]
    noise_dim: int = Field(gt=0)
    aux_groups: list[str] = Field(default=list(AUX_GROUPS))
    aux_correlation: list[list[float]] = Field(description="Gaussian-copula correlation of the aux inputs")
    mu_plus_fraction: float = Field(ge=0, le=1, description="Weighted fraction of mu+ (pdg -13) in training")
    muons_per_pot: float = Field(gt=0, description="Sum of training-sample weights per proton on target")
    block_size: int = Field(default=65536, gt=0, description="Muons per counter-based random block")
    beam_spot: BeamSpot | None = Field(default=None, description="None: a model from before the record existed")
    files: dict[str, str] = Field(description="sha256 of each ONNX file, by file name")
    training_sample: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    figures_of_merit: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    aux_range: dict[str, tuple[float, float]] | None = Field(
        default=None, description="Per aux group, the lowest and highest training aux: what the generator was fed"
    )

    @field_validator("aux_correlation")
    @classmethod
    def _square(cls, matrix: list[list[float]]) -> list[list[float]]:
        if len(matrix) != len(AUX_GROUPS) or any(len(row) != len(AUX_GROUPS) for row in matrix):
            raise ValueError(f"aux_correlation must be {len(AUX_GROUPS)}x{len(AUX_GROUPS)}")
        return matrix

    @field_validator("aux_range")
    @classmethod
    def _ranges(cls, ranges: dict[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]] | None:
        if ranges is None:
            return None
        if set(ranges) != set(AUX_GROUPS):
            raise ValueError(f"aux_range must name the groups {', '.join(AUX_GROUPS)}, got {', '.join(ranges)}")
        bad = {group: (low, high) for group, (low, high) in ranges.items() if not 0 <= low <= high < math.inf}
        if bad:
            raise ValueError(f"aux_range must be finite [low, high] pairs with 0 <= low <= high, got {bad}")
        return ranges

    @property
    def beam_convention(self) -> str:
        """``painted``, ``spotless`` or ``unknown`` (no record): what every response states."""
        return self.beam_spot.convention if self.beam_spot else UNKNOWN_BEAM_SPOT

    @property
    def fairship_flags(self) -> str:
        """The ``run_simScript.py`` flags for this model's muons, or why they are not known."""
        return self.beam_spot.fairship_flags if self.beam_spot else UNKNOWN_FAIRSHIP_FLAGS

    def aux_ceiling(self) -> list[float]:
        """Per group (in ``aux_groups`` order), the highest aux the model was trained on, at most ``MAX_AUX``.

        Seeds whose aux heads answer more are beyond what the model learnt; models without ``aux_range``
        fall back to ``MAX_AUX``.
        """
        ranges = self.aux_range or {}
        return [min(ranges[group][1], MAX_AUX) if group in ranges else MAX_AUX for group in self.aux_groups]

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        return cls.model_validate_json((folder / MANIFEST).read_text())

    def save(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(self.model_dump_json(indent=2) + "\n")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
