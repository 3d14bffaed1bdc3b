"""All hyper-parameters of a training run in one place, saved with the model (``model.json``).

A pydantic model so that a JSON file given with ``--config`` is validated (unknown keys are errors,
which catches typos) and the resolved values travel into the manifest unchanged.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from muongan.errors import UserError

# Fields used only once training is over: a resumed run may change them (to export again differently).
AFTER_TRAINING = ("calibrated_columns", "calibration_muons")
CLOSE = 0.6  # difflib's ratio from which an unknown key is named as a likely misspelling of a field


class TrainConfig(BaseModel):
    """Hyper-parameters and seeds; defaults are those of ``models/default``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 1
    noise_dim: int = Field(default=24, gt=0, description="Generator noise inputs per muon (DESIGN 10: keep small)")
    generator_hidden: list[int] = Field(
        default=[256, 512, 256], description="0.27M multiply-adds per muon: >= 10x the seed library's speed"
    )
    discriminator_hidden: list[int] = Field(default=[512, 512, 256])
    aux_head_hidden: list[int] = Field(default=[128, 128])
    discriminator_dropout: float = Field(default=0.0, ge=0, lt=1)
    batch_size: int = Field(default=512, gt=0)
    steps: int = Field(default=25000, gt=0, description="Generator updates in all")
    discriminator_steps: int = Field(default=1, gt=0, description="Discriminator updates per generator update")
    generator_lr: float = Field(default=1e-4, gt=0, description="Two time-scale rule: G slower than D")
    discriminator_lr: float = Field(default=3e-4, gt=0)
    final_lr_fraction: float = Field(default=0.1, gt=0, le=1, description="Cosine-decayed rate at the end / start")
    ema_decay: float = Field(
        default=0.999, ge=0, lt=1, description="Moving average of G weights (0 = last weights) used for export"
    )
    adam_beta1: float = Field(default=0.5, ge=0, lt=1)
    aux_lambda: float = Field(
        default=0.3, ge=0, description="Weight of the aux-consistency term in the G loss (1.0 cost fidelity: search)"
    )
    gradient_penalty: float = Field(
        default=0.0,
        ge=0,
        description="R1 penalty gamma/2 E|grad_x D(x)|^2 on real muons (Mescheder et al. 2018); 0 = off",
    )
    tail_scale: float = Field(
        default=1.0,
        ge=1,
        description="Loss weights as if the aux marginals were widened by this factor (the boosted mode's scale); "
        "1 = plain",
    )
    aux_head_steps: int = Field(default=3000, ge=0, description="Pre-training steps of the frozen aux heads")
    aux_head_lr: float = Field(default=1e-3, gt=0)
    holdout_fraction: float = Field(default=0.1, gt=0, lt=1, description="Part of the sample kept for FOM")
    eval_every: int = Field(default=1000, gt=0, description="Steps between figures of merit")
    eval_size: int = Field(default=50000, gt=0, description="Muons per side in the periodic two-sample test")
    selection_tolerance: float = Field(
        default=0.003,
        ge=0,
        description="AUC differences below this are noise: the latest evaluation within it of the lowest is kept",
    )
    calibrated_columns: list[Literal["r", "z", "pt", "p"]] = Field(
        default=["z"],
        description="Feature columns whose marginal is mapped onto the training sample's after training "
        "(training.model.calibration); [] = none. A calibrated column carries the sample's own fluctuations in its "
        "deepest quantiles, so pT or |p| only on a sample large enough for them (training/README.md, Marginal "
        "calibration). The shipped training/default.json adds r (a spotless sample's muons on the beam axis need it) "
        "and |p| (the network renders 0.7 of its sample's deepest |p| tail) to z, for its 3.1e6-POT sample",
    )
    calibration_muons: int = Field(
        default=4_000_000, gt=1, description="Muons drawn on each side (training sample by weight, generator) to fit it"
    )
    checkpoint_every: int = Field(default=500, gt=0)
    block_size: int = Field(default=65536, gt=0, description="Manifest block size for counter-based sampling")
    p_max: float = Field(
        default=400.0,
        gt=0,
        description="Upper bound of |p| [GeV/c], the beam momentum: the generator cannot exceed it by construction",
    )
    region_margin: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Upper edges of r, z and sin theta lie this fraction of the sample's extent beyond its maximum",
    )

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """The config in ``path``; a file that cannot be read or holds a mistake is a :class:`UserError` with
        one line per problem (a misspelt key names the fields it is closest to), never a traceback."""
        try:
            text = path.read_text()
        except OSError as error:
            raise UserError(f"cannot read the config {path}: {error.strerror or error}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise UserError("\n".join(f"{path}: {problem}" for problem in problems(error))) from None

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")


def problems(error: ValidationError) -> list[str]:
    """One line per mistake in a config: bad JSON, an unknown key (with the closest fields), a bad value."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}{_closest(where)}")
        elif item["type"] == "json_invalid":
            lines.append(item["msg"])
        elif not where:
            lines.append("must be a JSON object of TrainConfig fields")
        else:
            lines.append(f"{where} = {item['input']!r}: {item['msg']}")
    return lines


def _closest(key: str) -> str:
    """``: did you mean ...?`` naming the fields nearest to ``key`` (difflib's ratio, ``lr`` also read as
    ``learning_rate``): the nearest and any within 0.1 of it, at most three."""
    score = {
        name: max(difflib.SequenceMatcher(None, key, spelling).ratio() for spelling in (name, _spelled_out(name)))
        for name in TrainConfig.model_fields
    }
    best = max(score.values())
    close = sorted((name for name in score if score[name] >= max(CLOSE, best - 0.1)), key=lambda n: -score[n])[:3]
    if not close:
        return " (the keys are TrainConfig's fields: training/config.py)"
    return f": did you mean {' or '.join(close)}?"


def _spelled_out(name: str) -> str:
    return name.replace("lr", "learning_rate")
