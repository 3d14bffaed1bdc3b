"""Fidelity figures of merit (DESIGN section 7), numpy and scikit-learn only.

- ROC AUC of a two-sample classifier (HistGradientBoosting) that tries to tell generated muons from
  reference muons; 0.5 means indistinguishable. Equal sample sizes, each class's weights normalised
  to the same total, features = the physical columns plus |p| and pT, scored on a held-out half.
- Per-column 1-D Wasserstein distances (weighted), divided by the reference's weighted standard
  deviation so that columns compare.
- Rates above tail thresholds (pT > 3 GeV, |p| > 100 GeV), generated relative to reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from service.contract.muons import PHYSICAL_COLUMNS
from service.plots import observables

TAILS: dict[str, tuple[str, float]] = {"pt_above_3": ("pt", 3.0), "p_above_100": ("p", 100.0)}
# DESIGN 7: the physical columns plus |p| and pT.
CLASSIFIER_COLUMNS: tuple[str, ...] = (*PHYSICAL_COLUMNS, "pt", "p")


def features(muons: np.ndarray, z_front: float = 0.0) -> dict[str, np.ndarray]:
    """:func:`service.plots.observables` plus the start point's ``r`` and its depth ``dz = z - z_front``."""
    columns = observables(muons)
    columns["r"] = np.hypot(columns["x"], columns["y"])
    columns["dz"] = columns["z"] - z_front
    return columns


def classifier_auc(
    generated: np.ndarray, reference: np.ndarray, seed: int, columns: Sequence[str] = CLASSIFIER_COLUMNS
) -> float:
    """Two-sample test: weighted ROC AUC on a held-out half; both inputs canonical ``(n, 8)``.

    ``columns`` (names of :func:`features`) are what the classifier sees: one of them gives a one-feature AUC.
    """
    n = min(len(generated), len(reference))
    rng = np.random.default_rng(seed)
    generated = generated[rng.choice(len(generated), n, replace=False)]
    reference = reference[rng.choice(len(reference), n, replace=False)]
    both = [features(generated), features(reference)]
    x = np.vstack([np.column_stack([side[name] for name in columns]) for side in both])
    weights = np.concatenate([generated[:, -1] / generated[:, -1].sum(), reference[:, -1] / reference[:, -1].sum()])
    labels = np.repeat([0, 1], n)
    x_fit, x_test, y_fit, y_test, w_fit, w_test = train_test_split(
        x, labels, weights, test_size=0.5, random_state=seed, stratify=labels
    )
    classifier = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=seed)
    # One OpenMP thread: on shared cores its spinning threads wait for each other (measured on 2 busy cores,
    # 2e4 a side: 1.7 s with one thread, 36 s with two); the AUC does not depend on it.
    with threadpool_limits(1, user_api="openmp"):
        classifier.fit(x_fit, y_fit, sample_weight=w_fit * len(w_fit))
        scores = classifier.predict_proba(x_test)[:, 1]
    return float(roc_auc_score(y_test, scores, sample_weight=w_test))


def wasserstein_over_std(generated: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Weighted 1-D Wasserstein distance of every observable, over the reference's weighted std."""
    gen, ref = observables(generated), observables(reference)
    w_gen, w_ref = generated[:, -1].astype(np.float64), reference[:, -1].astype(np.float64)
    distances = {}
    for name in gen:
        std = np.sqrt(np.cov(ref[name], aweights=w_ref))
        distance = wasserstein_distance(gen[name], ref[name], w_gen, w_ref)
        distances[name] = float(distance / std) if std > 0 else float(distance)
    return distances


def figures_of_merit(generated: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The periodic figures of a training run; ``classifier_auc`` is the one the best model is chosen by."""
    gen, ref = observables(generated), observables(reference)
    w_gen, w_ref = generated[:, -1].astype(np.float64), reference[:, -1].astype(np.float64)
    tails = {}
    for label, (name, threshold) in TAILS.items():
        rate_gen = float(w_gen[gen[name] > threshold].sum() / w_gen.sum())
        rate_ref = float(w_ref[ref[name] > threshold].sum() / w_ref.sum())
        tails[label] = {
            "generated": rate_gen,
            "reference": rate_ref,
            "ratio": rate_gen / rate_ref if rate_ref > 0 else None,
        }
    return {
        "classifier_auc": classifier_auc(generated, reference, seed),
        "n_generated": len(generated),
        "n_reference": len(reference),
        "wasserstein_over_std": wasserstein_over_std(generated, reference),
        "tail_rates": tails,
    }
