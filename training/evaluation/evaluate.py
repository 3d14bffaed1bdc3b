"""Everything ``muongan evaluate`` measures (issue 13 goal 5), as one JSON-able dict.

Muons come from the service's own engine (:class:`service.engine.generation.Engine`) on the exported ONNX
graph, so the figures are those of the muons users get, bit for bit for the same seed.

- classifier AUC (DESIGN 7) for ``seeds`` seeds, each with its own generated sample, classifier seed
  and split: mean, sample standard deviation and each value, with n per side; and the same after FairShip's
  default beam spot is painted on both samples (what Geant4 sees, :mod:`training.evaluation.radial`);
- the radial profile of the start point (shares at r = 0 and below 1 um ... 5 cm), on the tail table's sample;
- one-feature AUCs (the same classifier on r, z, pT or |p| alone: which variable gives it away);
- Wasserstein distances over the reference's std;
- the tail table (:mod:`training.evaluation.tails`) on a larger sample than the rest: its rates are counts above
  a 99.9% or 99.99% quantile, so their errors shrink only with the reference's size, while the
  classifier's cost grows with n and its AUC does not need more;
- FPD and KPD (:mod:`training.evaluation.distances`) on the classifier's columns with z taken from the front;
- physical checks and boosted ESS gains (:mod:`training.evaluation.boosted`); the reference's largest z and r,
  which the checks count muons beyond, come from the tail table's larger sample too.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from service.engine.generation import Engine, Request
from training.evaluation.boosted import boosted_figures
from training.evaluation.distances import fpd, kpd
from training.evaluation.fom import CLASSIFIER_COLUMNS, classifier_auc, features, wasserstein_over_std
from training.evaluation.radial import painted, radial_profile
from training.evaluation.tails import tail_table

ONE_FEATURE = ("r", "z", "pt", "p")
# The classifier's columns, z measured from the front: FPD's scaling by max |value| would flatten z ~ -7000 cm.
DISTANCE_COLUMNS = tuple("dz" if name == "z" else name for name in CLASSIFIER_COLUMNS)


def distance_matrix(muons: np.ndarray, z_front: float) -> np.ndarray:
    columns = features(muons, z_front)
    return np.column_stack([columns[name] for name in DISTANCE_COLUMNS])


def evaluate(
    engine: Engine, reference: np.ndarray, n: int, seed: int, seeds: int, n_boosted: int, z_front: float
) -> tuple[dict[str, Any], np.ndarray]:
    """The figures, and the first seed's generated sample (for the figures' plots).

    ``reference``: a uniform draw in random order (:func:`service.samples.survey.subsample`), whose first
    ``n`` rows are the draw of ``n``; those face ``n`` generated muons a side, and the tail table faces all
    of it with as many generated muons (the first seed's, so its first ``n`` are the classifier's).
    """
    tails_reference, reference = reference, reference[:n]
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    tails_generated = _plain(engine, seed, len(tails_reference))
    generated = tails_generated[:n]  # the slice is bit for bit the draw of n (the service's promise)
    samples = [generated] + [_plain(engine, seed + k, n) for k in range(1, seeds)]
    aucs = [classifier_auc(sample, reference, seed + k) for k, sample in enumerate(samples)]
    lap("classifier_auc")
    # Each side painted with its own seeded spot, different from the other side's and from seed to seed.
    painted_aucs = [
        classifier_auc(painted(sample, 2 * (seed + k)), painted(reference, 2 * (seed + k) + 1), seed + k)
        for k, sample in enumerate(samples)
    ]
    lap("classifier_auc_painted")
    one_feature = {name: classifier_auc(generated, reference, seed, columns=(name,)) for name in ONE_FEATURE}
    lap("one_feature_auc")
    wasserstein = wasserstein_over_std(generated, reference)
    tails = tail_table(tails_generated, tails_reference, z_front)
    profile = radial_profile(tails_generated, tails_reference)
    lap("wasserstein_and_tails")
    x_ref, x_gen = distance_matrix(reference, z_front), distance_matrix(generated, z_front)
    w_ref, w_gen = reference[:, -1], generated[:, -1]
    distances = {"fpd": fpd(x_ref, w_ref, x_gen, w_gen, seed), "kpd": kpd(x_ref, w_ref, x_gen, w_gen, seed)}
    lap("fpd_kpd")
    boosted = boosted_figures(engine, generated, n_boosted, seed, tails_reference)
    lap("boosted")
    figures = {
        "n_per_side": n,
        "seeds": list(range(seed, seed + seeds)),
        "classifier_auc": {**_spread(aucs), "columns": list(CLASSIFIER_COLUMNS)},
        "classifier_auc_painted": {
            **_spread(painted_aucs),
            "spot": "FairShip's defaults painted on both sides: 0.8 cm Gaussian plus a point on the 5 cm circle",
        },
        "one_feature_auc": one_feature,
        "radial_profile": profile,
        "wasserstein_over_std": wasserstein,
        "tails": tails,
        "tails_n_per_side": len(tails_reference),
        **distances,
        "distance_columns": list(DISTANCE_COLUMNS),
        "z_front": z_front,
        "physical_checks": boosted["checks"],
        "boosted_ess": boosted["ess"],
        "n_boosted": n_boosted,
        "seconds": seconds,
    }
    return figures, generated


def _spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value) and the values, over classifier seeds."""
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "values": values,
    }


def _plain(engine: Engine, seed: int, n: int) -> np.ndarray:
    muons, _ = engine.generate(Request(seed, 0, n, engine.plain_source()))
    return muons
