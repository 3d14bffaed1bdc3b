"""``model.json``: everything the service knows about a model folder (DESIGN section 1).

The model folder is the contract between training and serving: ``generator.onnx``,
``discriminator.onnx`` and this manifest. Tensor names are fixed here so that any ONNX runtime can
feed the graphs by name (tf2onnx may reorder them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    files: dict[str, str] = Field(description="sha256 of each ONNX file, by file name")
    training_sample: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    figures_of_merit: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)

    @field_validator("aux_correlation")
    @classmethod
    def _square(cls, matrix: list[list[float]]) -> list[list[float]]:
        if len(matrix) != len(AUX_GROUPS) or any(len(row) != len(AUX_GROUPS) for row in matrix):
            raise ValueError(f"aux_correlation must be {len(AUX_GROUPS)}x{len(AUX_GROUPS)}")
        return matrix

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
