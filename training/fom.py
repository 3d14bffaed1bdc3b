"""Fidelity figures of merit (DESIGN section 7), numpy and scikit-learn only.

- ROC AUC of a two-sample classifier (HistGradientBoosting) that tries to tell generated muons from
  reference muons; 0.5 means indistinguishable. Equal sample sizes, each class's weights normalised
  to the same total, features = the physical columns plus |p| and pT, scored on a held-out half.
- Per-column 1-D Wasserstein distances (weighted), divided by the reference's weighted standard
  deviation so that columns compare.
- Rates above tail thresholds (pT > 3 GeV, |p| > 100 GeV), generated relative to reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from service.plots import observables

TAILS: dict[str, tuple[str, float]] = {"pt_above_3": ("pt", 3.0), "p_above_100": ("p", 100.0)}


def classifier_auc(generated: np.ndarray, reference: np.ndarray, seed: int) -> float:
    """Two-sample test: weighted ROC AUC on a held-out half; both inputs canonical ``(n, 8)``."""
    n = min(len(generated), len(reference))
    rng = np.random.default_rng(seed)
    generated = generated[rng.choice(len(generated), n, replace=False)]
    reference = reference[rng.choice(len(reference), n, replace=False)]
    both = [observables(generated), observables(reference)]
    x = np.vstack([np.column_stack(list(side.values())) for side in both])
    weights = np.concatenate([generated[:, -1] / generated[:, -1].sum(), reference[:, -1] / reference[:, -1].sum()])
    labels = np.repeat([0, 1], n)
    x_fit, x_test, y_fit, y_test, w_fit, w_test = train_test_split(
        x, labels, weights, test_size=0.5, random_state=seed, stratify=labels
    )
    classifier = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=seed)
    classifier.fit(x_fit, y_fit, sample_weight=w_fit * len(w_fit))
    return float(roc_auc_score(y_test, classifier.predict_proba(x_test)[:, 1], sample_weight=w_test))


def figures_of_merit(generated: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """All figures as a JSON-able dict; ``classifier_auc`` is the one the best model is chosen by."""
    gen, ref = observables(generated), observables(reference)
    w_gen, w_ref = generated[:, -1].astype(np.float64), reference[:, -1].astype(np.float64)
    wasserstein = {}
    for name in gen:
        std = np.sqrt(np.cov(ref[name], aweights=w_ref))
        distance = wasserstein_distance(gen[name], ref[name], w_gen, w_ref)
        wasserstein[name] = float(distance / std) if std > 0 else float(distance)
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
        "wasserstein_over_std": wasserstein,
        "tail_rates": tails,
    }
