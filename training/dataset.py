"""From a weighted muon sample to what training needs: features, aux values, copula, split.

Everything fitted here (feature scalings, copula correlation, mu+ fraction) comes from the training
part only; the held-out part is kept in physical units for the figure of merit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import tensorflow as tf

from service.contract.muons import PHYSICAL_COLUMNS, column
from service.samples import Sample
from training.config import TrainConfig
from training.features import to_features
from training.rareness import copula_correlation, rareness
from training.scaling import Scaling

_N_PHYSICAL = len(PHYSICAL_COLUMNS)


@dataclass(frozen=True)
class Prepared:
    scaling: Scaling
    features: np.ndarray  # (n, 9) float32, training part
    aux: np.ndarray  # (n, 4) float32
    weights: np.ndarray  # (n,) float64
    holdout: np.ndarray  # (m, 8) canonical muons, never trained on
    correlation: np.ndarray  # (4, 4)
    mu_plus_fraction: float


def split(muons: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split into (training, held-out) canonical arrays."""
    order = np.random.default_rng(seed).permutation(len(muons))
    n_holdout = max(1, round(fraction * len(muons)))
    return muons[order[n_holdout:]], muons[order[:n_holdout]]


def features_of(physical: np.ndarray, scaling: Scaling) -> np.ndarray:
    result: np.ndarray = to_features(tf.constant(physical[:, :_N_PHYSICAL]), scaling).numpy()
    return result


def prepare(sample: Sample, config: TrainConfig) -> Prepared:
    train, holdout = split(sample.muons, config.holdout_fraction, config.seed)
    weights = train[:, -1].astype(np.float64)
    scaling = Scaling.fit(train[:, :_N_PHYSICAL], weights, config.p_max, config.region_margin)
    features = features_of(train, scaling)
    aux = rareness(train[:, :_N_PHYSICAL], weights, config.seed)
    mu_plus = train[:, column("pdg")] < 0
    return Prepared(
        scaling=scaling,
        features=features,
        aux=aux,
        weights=weights,
        holdout=holdout,
        correlation=copula_correlation(aux, weights),
        mu_plus_fraction=float(weights[mu_plus].sum() / weights.sum()),
    )


def prepare_cached(sample: Sample, config: TrainConfig, cache: Path, key: str) -> Prepared:
    """:func:`prepare`, saved to ``cache`` so that a resumed run skips the nearest-neighbour search.

    ``key`` names the sample (its sha256); the cache is used only if key, seed and split match.
    """
    stamp = json.dumps({"sample": key, "seed": config.seed, "holdout_fraction": config.holdout_fraction})
    if cache.exists():
        with np.load(cache) as saved:
            if str(saved["stamp"]) == stamp:
                arrays = {name: saved[name] for name in saved.files if name not in ("stamp", "scaling")}
                return Prepared(
                    scaling=Scaling.from_dict(json.loads(str(saved["scaling"]))),
                    mu_plus_fraction=float(arrays.pop("mu_plus_fraction")),
                    **arrays,
                )
    data = prepare(sample, config)
    arrays = {f.name: getattr(data, f.name) for f in fields(data) if f.name != "scaling"}
    np.savez(cache, stamp=stamp, scaling=json.dumps(data.scaling.to_dict()), **arrays)
    return data
