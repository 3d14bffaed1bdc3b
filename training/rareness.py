"""Rareness ("aux") values and their Gaussian copula (DESIGN sections 3 and 4).

For each feature group - transverse position (xy), z, transverse momentum (pt), pz - a muon's
rareness is the mean distance to its 3 nearest neighbours in that group's scaled coordinates, mapped
by weighted rank onto a one-tailed standard normal: ``u`` = weighted ECDF in (0, 1),
``a = Phi^-1((1 + u) / 2) >= 0``. Larger means rarer. The generator is conditioned on these values,
which lets a user ask for tails on purpose.

Scaled coordinates are the physical ones divided by the group's weighted standard deviation (one
scale for both axes of a 2-D group, so distances stay isotropic). Not the network features: their
log scalings stretch the region next to the z and |p| edges, which would make the densest muons look
"rare"; in physical coordinates rare means the tails a user wants to boost (large r, z, pT, pz).
Exact ties (e.g. many muons at the primary vertex) are broken by a seeded random order, so the
marginals are exactly one-tailed normal, as the service assumes when it samples the copula.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.neighbors import NearestNeighbors

from service.contract.manifest import AUX_GROUPS

NEIGHBOURS = 3


def group_coordinates(physical: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Each group's coordinates from ``(n, 7)`` physical muons, divided by their weighted spread."""
    groups = {"xy": physical[:, 1:3], "z": physical[:, 3:4], "pt": physical[:, 4:6], "pz": physical[:, 6:7]}
    scaled = {}
    for name, values in groups.items():
        values = values.astype(np.float64)
        centred = values - np.average(values, axis=0, weights=weights)
        spread = np.sqrt(np.average(np.sum(centred**2, axis=1), weights=weights) / values.shape[1])
        scaled[name] = centred / max(float(spread), 1e-12)
    return scaled


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


def rareness(physical: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """``(n, 4)`` float32 aux values in :data:`service.contract.manifest.AUX_GROUPS` order, from ``(n, 7)`` muons."""
    rng = np.random.default_rng(seed)
    coordinates = group_coordinates(physical, weights)
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
