"""Rareness ("aux") values and their Gaussian copula (DESIGN sections 3 and 4), for sets of any size.

For each feature group - transverse position (xy), z, transverse momentum (pt), pz - a muon's
rareness is the mean distance to its 3 nearest neighbours in that group's physical coordinates,
mapped by weighted rank onto a one-tailed standard normal: ``u`` = weighted ECDF in (0, 1),
``a = Phi^-1((1 + u) / 2) >= 0``. Larger means rarer. The generator is conditioned on these values,
which lets a user ask for tails on purpose.

What scales to 1e8+ muons (training/README.md, "Rareness at scale"):

- Neighbours are searched among a fixed-size **reference** subsample (the first ``n_ref`` rows of a
  seeded uniform subsample, :mod:`service.samples.survey`), not the whole set. The mean distance to
  the k-th neighbour among m points drawn from a density f is about (k / (m f))^(1/d): still a
  monotone function of the local density, only scaled by (n / m)^(1/d) against a search over all n,
  and one global factor cannot change a rank, so no rescaling is applied.
- The weighted rank is taken against a **table**: the distances of a larger fixed-size subsample
  (the whole subsample, reference included), with its weights. A muon's u is the table's weighted
  ECDF at its distance; where it ties with table entries (its own entry, or many muons at exactly
  x = y = 0) it is placed uniformly at random within the tie by a per-muon random number. When the
  set is no larger than the table (every test, every sample up to millions) every muon is in the
  table and the marginals are exactly one-tailed normal; beyond, they are so to within the table's
  sampling error (Dvoretzky-Kiefer-Wolfowitz: sup |u error| < 1.4e-3 at 95% for a 1e6-row table).

Physical coordinates, not the network features: the features' log scalings stretch the region next
to the z and |p| edges, which would make the densest muons look "rare"; in physical coordinates rare
means the tails a user wants to boost (large r, z, pT, pz). Distances are isotropic within a group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import ndtr, ndtri

from service.contract.manifest import AUX_GROUPS

NEIGHBOURS = 3
GROUP_COLUMNS: dict[str, list[int]] = {"xy": [1, 2], "z": [3], "pt": [4, 5], "pz": [6]}


@dataclass(frozen=True)
class RankTable:
    """Sorted table distances and their cumulative weights: a weighted ECDF to interpolate."""

    distances: np.ndarray
    cumulative: np.ndarray  # cumulative weight up to and including each entry

    @classmethod
    def of(cls, distances: np.ndarray, weights: np.ndarray) -> RankTable:
        order = np.argsort(distances, kind="stable")
        return cls(distances[order], np.cumsum(weights[order], dtype=np.float64))

    def uniform(self, distances: np.ndarray, ties: np.ndarray) -> np.ndarray:
        """Weighted ECDF position in (0, 1); ties with table entries spread uniformly by ``ties`` in [0, 1).

        The look-ups run on sorted distances: numpy's searches then start from the previous answer,
        which is several times faster against a table of millions than random queries.
        """
        order = np.argsort(distances)
        ordered = distances[order]
        lo = np.searchsorted(self.distances, ordered, side="left")
        hi = np.searchsorted(self.distances, ordered, side="right")
        padded = np.concatenate([[0.0], self.cumulative])
        below, equal = padded[lo], padded[hi] - padded[lo]
        midpoints = self.cumulative - 0.5 * np.diff(padded)
        between = np.interp(ordered, self.distances, midpoints)  # a distance no table entry has
        result = np.empty_like(distances)
        result[order] = np.where(equal > 0, below + ties[order] * equal, between) / self.cumulative[-1]
        return result


class Rareness:
    """Neighbour search among reference points and weighted rank against a table, per group.

    ``table`` is ``(m, 7)`` physical muons whose first ``n_ref`` rows are the reference points.
    """

    def __init__(self, table: np.ndarray, weights: np.ndarray, n_ref: int) -> None:
        reference = table[:n_ref].astype(np.float64)
        self._searches = {g: _nearest(reference[:, cols]) for g, cols in GROUP_COLUMNS.items()}
        member = np.arange(len(table)) < n_ref
        self.table_distances = self.distances(table, member)
        self._tables = {g: RankTable.of(self.table_distances[:, i], weights) for i, g in enumerate(AUX_GROUPS)}

    def distances(self, physical: np.ndarray, member: np.ndarray) -> np.ndarray:
        """``(n, 4)`` mean distances to the nearest reference points, a reference point's own excluded."""
        result = np.empty((len(physical), len(AUX_GROUPS)))
        for i, group in enumerate(AUX_GROUPS):
            found = self._searches[group](physical[:, GROUP_COLUMNS[group]].astype(np.float64))
            result[:, i] = np.where(member, found[:, 1:].mean(axis=1), found[:, :NEIGHBOURS].mean(axis=1))
        return result

    def aux(self, distances: np.ndarray, ties: np.ndarray) -> np.ndarray:
        """``(n, 4)`` float32 aux values from :meth:`distances`; ``ties`` ``(n, 4)`` uniform in [0, 1)."""
        columns = [self._tables[g].uniform(distances[:, i], ties[:, i]) for i, g in enumerate(AUX_GROUPS)]
        return from_uniform(np.column_stack(columns)).astype(np.float32)


def _nearest(reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A search for the ``NEIGHBOURS + 1`` smallest distances to ``reference`` points, sorted, per query.

    Two dimensions: a k-d tree, queried in order of the first coordinate. One dimension: the answer
    lies among the ``NEIGHBOURS + 1`` sorted reference values on either side of the query's insertion
    point (padded with infinities), which numpy finds and ranks several times faster than the tree.
    """
    k = NEIGHBOURS + 1
    if reference.shape[1] > 1:
        tree = cKDTree(reference)

        def query(points: np.ndarray) -> np.ndarray:
            order = np.argsort(points[:, 0])  # neighbouring queries walk the same branches: 1.8x faster
            result = np.empty((len(points), k))
            result[order] = tree.query(points[order], k=k, workers=-1)[0].reshape(len(points), k)
            return result

        return query
    infinity = np.full(k, np.inf)
    padded = np.concatenate([-infinity, np.sort(reference[:, 0]), infinity])
    window = np.arange(2 * k)

    def search(points: np.ndarray) -> np.ndarray:
        values = points[:, 0]
        start = np.searchsorted(padded, values, side="left")  # padded[start - 1] < value <= padded[start]
        candidates = padded[start[:, None] - k + window]
        return np.sort(np.abs(candidates - values[:, None]), axis=1)[:, :k]

    return search


def from_uniform(u: np.ndarray) -> np.ndarray:
    """u in (0, 1) -> one-tailed standard normal ``Phi^-1((1 + u) / 2)``."""
    result: np.ndarray = ndtri((1.0 + u) / 2.0)
    return result


def rareness(physical: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """``(n, 4)`` float32 aux values of a sample held in memory: every muon is reference and table."""
    found = Rareness(physical, weights, len(physical))
    ties = np.random.default_rng(seed).random((len(physical), len(AUX_GROUPS)))
    return found.aux(found.table_distances, ties)


def to_copula_normal(aux: np.ndarray) -> np.ndarray:
    """One-tailed normal aux -> standard normal: ``z = Phi^-1(2 Phi(a) - 1)``."""
    result: np.ndarray = ndtri(2.0 * ndtr(aux.astype(np.float64)) - 1.0)
    return result


def from_copula_normal(z: np.ndarray) -> np.ndarray:
    """Standard normal -> one-tailed normal aux: ``a = Phi^-1((1 + Phi(z)) / 2)``."""
    return from_uniform(ndtr(z))


class CopulaMoments:
    """Weighted first and second moments of the copula normals, added chunk by chunk."""

    def __init__(self) -> None:
        self.weight = 0.0
        self.first = np.zeros(len(AUX_GROUPS))
        self.second = np.zeros((len(AUX_GROUPS), len(AUX_GROUPS)))

    def add(self, aux: np.ndarray, weights: np.ndarray) -> None:
        z = to_copula_normal(aux)
        finite = np.all(np.isfinite(z), axis=1)
        z, w = z[finite], weights[finite].astype(np.float64)
        self.weight += float(w.sum())
        self.first += w @ z
        self.second += (z * w[:, None]).T @ z

    def correlation(self) -> np.ndarray:
        mean = self.first / self.weight
        covariance = self.second / self.weight - np.outer(mean, mean)
        scale = np.sqrt(np.diag(covariance))
        correlation: np.ndarray = covariance / np.outer(scale, scale)
        np.fill_diagonal(correlation, 1.0)
        return correlation


def copula_correlation(aux: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted 4x4 correlation of the copula normals of the aux values."""
    moments = CopulaMoments()
    moments.add(aux, weights)
    return moments.correlation()
