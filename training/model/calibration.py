"""The generator's marginals put onto the training sample's after training: quantile mapping.

A GAN learns the joint distribution only as well as its discriminator can tell it apart, and in the
deepest tails, where a batch of 512 muons rarely holds one, it cannot: there the generator's muons go
as far as its normal noise extrapolates (the first quantile-mapped model made 25% too few muons beyond
the 99.99% quantile of z - z_front). A column's one-dimensional distribution, though, the training sample
states to its own precision. So after training each column chosen in the config goes through the
monotone map that takes the generator's quantiles onto the training sample's (rows drawn by weight) at
the normal scores -4, -3.8, ..., 4 (quantile mapping, as climate-model output is corrected against
observations), piecewise linear, continued with its end slopes beyond the end knots.

What it costs: the model then carries the training sample's own fluctuations in that column's deepest
quantiles, where the network had smoothed over them. On 7e5 POT the deepest |p| and pT tails lay 1.2 to 1.3
times those of independent runs (training/README.md, "Marginal calibration"), so |p| is calibrated only since
the default trains on 3.1e6 POT, and pT not at all.

What it keeps: each map is monotone in one column, so the generator's copula (every rank correlation)
is untouched; it acts on the raw feature before the bounded maps of :mod:`training.parameterisation.features`, so every
muon stays physical; and a muon's weight depends only on the inputs drawn, so boosted weights stay exact.
Columns are the scaled features r, z, pt, p: for r and z their maps are maps of the physical variable,
for pt and p of its position between its edges (which move with |p| and z).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from scipy.special import ndtr

from training.parameterisation.features import FEATURES, piecewise_linear
from training.parameterisation.scaling import NORMAL_SCORES, float32_exact

CALIBRATABLE = ("r", "z", "pt", "p")


@dataclass(frozen=True)
class Calibration:
    """Per column: the generator's raw feature quantiles (``knots``) and the training sample's (``values``)
    at the same levels; stored in ``model.json``. No columns: the identity."""

    knots: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        generated: np.ndarray,
        training: np.ndarray,
        columns: Iterable[str],
        scores: Mapping[str, Sequence[float]] | None = None,
    ) -> Calibration:
        """Maps from ``generated`` (raw generator features, charge first) onto ``training`` (features of
        training rows drawn by weight, so both unweighted), one per column named.

        ``scores``: per column, normal scores to add to the levels, where its feature's own map changes
        shape: r's quantile map is refined where the radius changes fast (the spotless core), and a map
        linear between the 41 plain levels would leave the generator's own shape between them.

        Knots are float32-exact and strictly increasing (a generator quantile equal to the one before it
        is dropped); a column whose generator output is constant keeps the identity. Where the training
        column has an atom at its floor (r's muons exactly on the beam axis), its share is a level too, so
        that exactly that share of the generator's muons maps onto the floor: between the normal scores'
        levels the map is linear, and would otherwise lift the muons between the atom's share and the next
        level off it (a spotless model made 11.5% on the axis where its sample had 12.4%).
        """
        knots, values = {}, {}
        for name in columns:
            i = FEATURES.index(name)
            levels = _levels(training[:, i].astype(np.float64), (scores or {}).get(name, ()))
            k, v = (float32_exact(np.quantile(side[:, i].astype(np.float64), levels)) for side in (generated, training))
            rising = np.concatenate([[True], np.diff(k) > 0])
            if rising.sum() >= 2:
                knots[name], values[name] = k[rising].tolist(), v[rising].tolist()
        return cls(knots, values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _levels(training: np.ndarray, scores: Sequence[float]) -> np.ndarray:
    """The quantile levels of a column's map: those of the normal scores and of ``scores``, plus the share of an
    atom at its floor."""
    levels = ndtr(np.union1d(NORMAL_SCORES, scores))
    at_floor = int(np.count_nonzero(training == training.min()))
    # The level whose (linearly interpolated) training quantile is the atom's last row: exactly the floor.
    atom = (at_floor - 1) / (len(training) - 1) if len(training) > 1 else 0.0
    if at_floor < 2 or atom >= levels[-1]:  # no atom, or (almost) nothing above it
        return levels
    result: np.ndarray = np.union1d(levels, [atom])
    return result


def calibrate(features: tf.Tensor, calibration: Calibration) -> tf.Tensor:
    """``(n, 9)`` raw features with each calibrated column mapped; the others as they are."""
    columns = tf.unstack(features, axis=1)
    for name, knots in calibration.knots.items():
        i = FEATURES.index(name)
        columns[i] = piecewise_linear(columns[i], knots, calibration.values[name], extend="both")
    return tf.stack(columns, axis=1)
