"""Fitted constants of the feature scalings (numpy only, so evaluation and rareness need no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

# The lower edges of z and |p| sit this fraction of the median distance above the sample's minimum
# below that minimum, so that the log scaling maps the sample's edge to a finite value (about 3
# standard deviations out) and the generator can approach the edge smoothly; it can then undershoot
# the sample's minimum by at most this much.
EDGE_MARGIN = 1e-2
# Knots of the momentum edge, evenly spaced from the target front to the sample's last muon: fine enough
# to follow an absorber-exit cut (the edge falls by the energy a muon made deeper no longer has to lose).
EDGE_KNOTS = 33
# Normal scores of the quantile maps (the radius's here, the marginal calibration's in training.model.calibration):
# their knots are the sample's quantiles at these scores. Out to 4 standard deviations, where a sample of
# 1e6 muons still has about 30 beyond the last knot.
NORMAL_SCORES = np.linspace(-4.0, 4.0, 41)
# r's map gets more knots where neighbouring ones lie further apart than this in its knot coordinate
# (asinh(R / r_core), a natural log of r above r_core; 0.25 is 28% in r), down to this step in score
# (16 knots for one of NORMAL_SCORES' intervals). See :func:`_refined`.
MAX_KNOT_STEP = 0.25
MIN_SCORE_STEP = 0.2 / 16


@dataclass(frozen=True)
class Scaling:
    """Fitted constants of the bounded monotone maps in ``features.py``; stored in ``model.json``.

    The physical region every generated muon lies in is stated here:
    ``0 <= r <= r_max``, ``z_low <= z <= z_high``, ``0 <= sin(theta) = pT / |p| <= sin_theta_max < 1``
    (so pz > 0 and pT < |p|) and ``edge(z) <= |p| <= p_high`` (the momentum cut and the beam momentum).
    ``edge(z)`` is piecewise linear through (``p_edge_z``, ``p_edge``), non-increasing, flat beyond the last
    knot; ``p_low``, its last value, is the cut for every z. Each scaled column but r is
    ``(g(v) - mean) / std``; r's is piecewise linear through (``r_knots``, ``r_scores``), see :func:`_normal_scores`,
    where the knots are in units of ``asinh(R / r_core)`` (:func:`radius_log`; linear in R when ``r_core`` is 0,
    as models fitted before it existed).
    """

    r_max: float
    r_knots: list[float]
    r_scores: list[float]
    z_low: float
    z_high: float
    z_mean: float
    z_std: float
    sin_theta_max: float
    pt_scale: float
    pt_mean: float
    pt_std: float
    p_edge_z: list[float]
    p_edge: list[float]
    p_low: float
    p_high: float
    p_mean: float
    p_std: float
    r_core: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Scaling:
        return cls(**values)

    @classmethod
    def fit(cls, physical: np.ndarray, weights: np.ndarray, p_high: float, margin: float) -> Scaling:
        """Weighted constants from ``(n, 7)`` physical muons: edges and medians set the maps, then standardise.

        ``p_high`` bounds |p| from above: the beam momentum, which no muon of the sample can reach.
        ``margin``: the upper edges of r, z and sin(theta) lie this fraction of the sample's extent beyond
        its largest value (sin_theta_max also stays below 1).
        """
        x, y, z, px, py, pz = (physical[:, i].astype(np.float64) for i in range(1, 7))
        r = np.hypot(x, y)
        pt = np.hypot(px, py)
        p = np.sqrt(pt**2 + pz**2)
        sin_theta = pt / p
        if np.any(pz <= 0):
            raise ValueError("every muon must go forward (pz > 0): the features carry |p| and sin(theta) < 1")
        if np.any(p >= p_high):
            row = int(np.argmax(p))
            raise ValueError(
                f"muon {row} has |p| = {p[row]:.6g} GeV/c, not below p_max = {p_high:g} (the beam momentum)"
            )
        w = weights.astype(np.float64)
        z_low = float(z.min()) - EDGE_MARGIN * max(_weighted_quantile(z - z.min(), w, 0.5), 1e-3)
        z_high = float(z.max()) + margin * (float(z.max()) - z_low)
        p_edge_z, p_edge = _momentum_edge(z, p, w, z_low)
        p_floor = np.interp(z, p_edge_z, p_edge)
        r_max = max(float(r.max()) * (1 + margin), 1e-3)
        sin_max = min(float(sin_theta.max()) * (1 + margin), 0.5 * (float(sin_theta.max()) + 1.0))
        pt_scale = max(_weighted_quantile(pt, w, 0.5), 1e-3)
        edge = p * sin_max
        stretched = r_max * np.arctanh(r / r_max)
        r_core = _core_radius(stretched, w)
        r_knots, r_scores = _normal_scores(radius_log(stretched, r_core), w)
        scaled = (
            _logit((z - z_low) / (z_high - z_low)),
            np.arcsinh(edge * np.arctanh(pt / edge) / pt_scale),
            _logit((p - p_floor) / (p_high - p_floor)),
        )
        (z_mean, z_std), (pt_mean, pt_std), (p_mean, p_std) = (_weighted_moments(g, w) for g in scaled)
        return cls(
            r_max=r_max,
            r_knots=r_knots.tolist(),
            r_scores=r_scores.tolist(),
            z_low=z_low,
            z_high=z_high,
            z_mean=z_mean,
            z_std=z_std,
            sin_theta_max=sin_max,
            pt_scale=pt_scale,
            pt_mean=pt_mean,
            pt_std=pt_std,
            p_edge_z=p_edge_z.tolist(),
            p_edge=p_edge.tolist(),
            p_low=float(p_edge[-1]),
            p_high=float(p_high),
            p_mean=p_mean,
            p_std=p_std,
            r_core=r_core,
        )


def _momentum_edge(z: np.ndarray, p: np.ndarray, w: np.ndarray, z_low: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots and values of the lowest |p| at each depth: the lower envelope, made non-increasing in z.

    A sample cut on the kinetic energy at the absorber's exit has its |p| edge falling with depth (a muon
    made deeper has less iron to cross); one edge for all z would leave the generator a sharp, z-dependent
    step to learn, which a classifier finds. Through the envelope the edge is where the map's logit goes
    to minus infinity instead. Non-increasing by construction (a running minimum over the bins), so an
    empty bin takes its upstream neighbour's edge; in bin k the line between knots k and k + 1 stays at
    or below every muon of the bin. Lowered by ``EDGE_MARGIN`` of the median distance above it, as z's.
    """
    knots = float32_exact(np.linspace(z_low, float(z.max()), EDGE_KNOTS))
    bins = np.clip(np.searchsorted(knots, z, side="right") - 1, 0, EDGE_KNOTS - 2)
    lowest = np.full(EDGE_KNOTS - 1, np.inf)
    np.minimum.at(lowest, bins, p)
    envelope = np.minimum.accumulate(lowest)  # finite: bin 0 holds the lowest z
    edge = np.append(envelope, envelope[-1])
    gap = EDGE_MARGIN * max(_weighted_quantile(p - np.interp(z, knots, edge), w, 0.5), 1e-3)
    return knots, edge - gap


def _core_radius(stretched: np.ndarray, w: np.ndarray) -> float:
    """The radius below which the quantile map interpolates linearly, above which logarithmically.

    SHiP's convention keeps muons at their production vertex: start points spread over six decades below a
    millimetre (prompt decays, charm flights, pi/K decays near the axis), and a map interpolating linearly
    in r between its knots would put each knot interval's muons at the top of its decade, a shape a
    classifier finds and the share below 10 um or 1 mm gets wrong. Interpolating in ``asinh(R / r_core)``
    makes the density log-uniform between knots instead. ``r_core`` is the weighted 1% quantile of the
    positive radii: on a painted ring (about 3 cm) the map stays nearly linear where the ring is.
    """
    positive = stretched > 0
    if not positive.any():
        return 1e-3
    return float(float32_exact(np.array([max(_weighted_quantile(stretched[positive], w[positive], 0.01), 1e-9)]))[0])


def radius_log(stretched: np.ndarray, r_core: float) -> np.ndarray:
    """The coordinate of the quantile map's knots: ``asinh(R / r_core)``, or R itself when ``r_core`` is 0."""
    result: np.ndarray = np.arcsinh(stretched / r_core) if r_core > 0 else stretched
    return result


def _normal_scores(stretched: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the radius's quantile map: the stretched radius at the weighted quantiles of :data:`NORMAL_SCORES`,
    refined where the radius changes fast (:func:`_refined`).

    A painted beam makes r a narrow ring (5 cm, 0.8 cm wide) with a cascade halo out to 4 times its radius
    and into its hole; without painting, an atom at r = 0 and a halo. No fixed analytic map puts both
    shapes near a normal, and a generator fed normal noise renders a column's tails only as far out
    as a normal reaches (its output is piecewise linear far out): under the ring's sqrt map the halo
    at 15 cm sat 9 standard deviations out, and the model made 23% too few muons beyond the 99.9%
    quantile. Through these knots the feature is a normal score. The first knot is r = 0, the floor:
    at the normal score of the atom's share when there is one, else where the lowest quantiles'
    line reaches 0. The map continues beyond the last knot with its last slope. Knots are strictly
    increasing: a quantile equal to the one before it (inside an atom) is dropped.
    """
    atom = float(w[stretched <= 0].sum() / w.sum())
    scores = NORMAL_SCORES[ndtr(NORMAL_SCORES) > atom]
    if atom > 0:  # the floor takes part in the refinement: the core just above the axis is where it is needed
        scores = np.concatenate([[float(ndtri(atom))], scores])
    scores, knots = _refined(scores, stretched, w)
    keep = np.concatenate([[True], np.diff(knots) > 0]) & (knots > 0)
    if atom > 0:
        knots[0], keep[0] = 0.0, True  # the floor
    knots, scores = knots[keep], scores[keep]
    if len(knots) < 2:  # (almost) every muon on the axis: a plain line above the floor
        return np.array([0.0, max(float(np.float32(stretched.max())), 1e-3)]), np.array([0.0, 1.0])
    if atom == 0:  # the lowest line, at most one score below the first knot (a steep line would squash the hole's halo)
        floor = max(scores[0] - knots[0] * (scores[1] - scores[0]) / (knots[1] - knots[0]), scores[0] - 1.0)
        knots, scores = np.concatenate([[0.0], knots]), np.concatenate([[floor], scores])
    return float32_exact(knots), float32_exact(scores)


def _refined(scores: np.ndarray, stretched: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` with midpoints added wherever neighbouring knots lie more than :data:`MAX_KNOT_STEP` apart,
    down to :data:`MIN_SCORE_STEP`; returns the scores and the sample's quantiles at them.

    Between two knots the map spreads the generator's muons evenly in the knot coordinate (about log r), so
    one interval can hold only one shape. SHiP's spotless core has several in one interval of the plain
    scores: muons of eta decays at 1e-8 cm, a dip near 1e-6 cm, charm and tau flights at 1e-3 cm; over the
    five decades from 1e-8 cm to 1e-3 cm that 5% of the muons span, the first spotless model made a flat
    density in log r, which a classifier on r alone told apart (AUC 0.548 at 4e5 muons a side). Refined,
    the map itself carries that shape and the generator only has to render a smooth normal score.
    """
    while True:
        knots = _weighted_quantiles(stretched, w, ndtr(scores))
        coarse = (np.diff(knots) > MAX_KNOT_STEP) & (np.diff(scores) > 1.5 * MIN_SCORE_STEP)
        if not coarse.any():
            return scores, knots
        scores = np.sort(np.concatenate([scores, (scores[:-1] + scores[1:])[coarse] / 2]))


def float32_exact(values: np.ndarray) -> np.ndarray:
    """Rounded as the graph holds its constants (float32), kept as float64: knots stored in ``model.json``
    are then exactly those the graph uses."""
    result: np.ndarray = np.asarray(values).astype(np.float32).astype(np.float64)
    return result


def _logit(u: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.log(u) - np.log1p(-u)
    return result


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    return float(_weighted_quantiles(values, weights, np.array([q]))[0])


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: np.ndarray) -> np.ndarray:
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    result: np.ndarray = np.interp(qs * cdf[-1], cdf, values[order])
    return result


def _weighted_moments(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    mean = float(np.average(values, weights=weights))
    std = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    return mean, max(std, 1e-6)
