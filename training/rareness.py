"""Rareness ("aux") values and their Gaussian copula (DESIGN sections 3 and 4).

For each feature group - transverse position (xy), z, transverse momentum (pt), pz - a muon's
rareness is the mean distance to its 3 nearest neighbours in that group's scaled coordinates, mapped
by weighted rank onto a one-tailed standard normal: ``u`` = weighted ECDF in (0, 1),
``a = Phi^-1((1 + u) / 2) >= 0``. Larger means rarer. The generator is conditioned on these values,
which lets a user ask for tails on purpose.

Scaled coordinates are the network features (:mod:`training.features`): the 2-D groups use the
scaled radius times the unit azimuth, so distances are isotropic and not dominated by the tails.
Exact ties (e.g. many muons at the primary vertex) are broken by a seeded random order, so the
marginals are exactly one-tailed normal, as the service assumes when it samples the copula.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.neighbors import NearestNeighbors

from service.manifest import AUX_GROUPS
from training.scaling import Scaling

NEIGHBOURS = 3


def group_coordinates(features: np.ndarray, s: Scaling) -> dict[str, np.ndarray]:
    """Each group's scaled coordinates from ``(n, 9)`` features (see :data:`training.features.FEATURES`).

    The radius terms are shifted so that r = 0 (pT = 0) sits at the origin of the group's plane. The
    pz group uses the |p| feature: for these forward muons pz and |p| differ by under pT^2 / 2p.
    """
    r_floor = features[:, 1] + s.r_mean / s.r_std
    pt_floor = features[:, 5] + s.pt_mean / s.pt_std
    return {
        "xy": np.column_stack([r_floor * features[:, 2], r_floor * features[:, 3]]),
        "z": features[:, 4:5],
        "pt": np.column_stack([pt_floor * features[:, 6], pt_floor * features[:, 7]]),
        "pz": features[:, 8:9],
    }


def knn_distance(points: np.ndarray) -> np.ndarray:
    """Mean distance to the :data:`NEIGHBOURS` nearest other points (the query point itself excluded)."""
    finder = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(points)
    distances, _ = finder.kneighbors(points)
    result: np.ndarray = distances[:, 1:].mean(axis=1)
    return result


def one_tailed_normal(values: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map values by weighted rank onto a one-tailed standard normal; ties broken at random."""
    order = np.lexsort((rng.random(len(values)), values))
    cumulative = np.cumsum(weights[order], dtype=np.float64)
    u = np.empty(len(values), dtype=np.float64)
    u[order] = (cumulative - 0.5 * weights[order]) / cumulative[-1]
    result: np.ndarray = ndtri((1.0 + u) / 2.0)
    return result


def rareness(features: np.ndarray, weights: np.ndarray, s: Scaling, seed: int) -> np.ndarray:
    """``(n, 4)`` float32 aux values in :data:`service.manifest.AUX_GROUPS` order."""
    rng = np.random.default_rng(seed)
    coordinates = group_coordinates(features.astype(np.float64), s)
    columns = [one_tailed_normal(knn_distance(coordinates[g]), weights, rng) for g in AUX_GROUPS]
    return np.column_stack(columns).astype(np.float32)


def to_copula_normal(aux: np.ndarray) -> np.ndarray:
    """One-tailed normal aux -> standard normal: ``z = Phi^-1(2 Phi(a) - 1)``."""
    result: np.ndarray = ndtri(2.0 * ndtr(aux.astype(np.float64)) - 1.0)
    return result


def from_copula_normal(z: np.ndarray) -> np.ndarray:
    """Standard normal -> one-tailed normal aux: ``a = Phi^-1((1 + Phi(z)) / 2)``."""
    result: np.ndarray = ndtri((1.0 + ndtr(z)) / 2.0)
    return result


def copula_correlation(aux: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted 4x4 correlation of the copula normals of the aux values."""
    z = to_copula_normal(aux)
    finite = np.all(np.isfinite(z), axis=1)
    covariance = np.cov(z[finite], rowvar=False, aweights=weights[finite])
    scale = np.sqrt(np.diag(covariance))
    correlation: np.ndarray = covariance / np.outer(scale, scale)
    np.fill_diagonal(correlation, 1.0)
    return correlation
