"""Fitted constants of the feature scalings (numpy only, so evaluation and rareness need no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# The lower edge sits this fraction of the scale below the sample's minimum, so that the log scaling
# maps the sample's edge to a finite value (about 3 standard deviations out) and the generator can
# approach the edge smoothly; it can then undershoot the sample's minimum by at most this much.
EDGE_MARGIN = 1e-2


@dataclass(frozen=True)
class Scaling:
    """Fitted constants of the monotone scalings; stored in ``model.json`` under hyperparameters.

    Each scaled column is ``(g(v) - mean) / std`` with ``g(r) = sqrt(r)``, ``g(pt) = asinh(pt / pt_scale)``,
    ``g(z) = log((z - z_low) / z_scale)`` above the sample's hard lower edge (the target front) and
    ``g(p) = logit((p - p_low) / (p_high - p_low))`` between the momentum cut and the beam momentum, so
    that generated values respect the edges by construction instead of spilling over them (which a
    two-sample classifier spots at once, and which a physicist sees as muons faster than the beam).
    Near ``p_low`` the logit is the same log scaling as z's.
    """

    r_mean: float
    r_std: float
    z_low: float
    z_scale: float
    z_mean: float
    z_std: float
    pt_scale: float
    pt_mean: float
    pt_std: float
    p_low: float
    p_high: float
    p_mean: float
    p_std: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> Scaling:
        return cls(**values)

    @classmethod
    def fit(cls, physical: np.ndarray, weights: np.ndarray, p_high: float) -> Scaling:
        """Weighted constants from ``(n, 7)`` physical muons: edges and medians set the scalings, then standardise.

        ``p_high`` bounds |p| from above: the beam momentum, which no muon of the sample can reach.
        """
        x, y, z, px, py, pz = (physical[:, i].astype(np.float64) for i in range(1, 7))
        r = np.hypot(x, y)
        pt = np.hypot(px, py)
        p = np.sqrt(pt**2 + pz**2)
        if np.any(pz <= 0):
            raise ValueError("every muon must go forward (pz > 0): the features carry |p| and pT, not the sign of pz")
        if np.any(p >= p_high):
            row = int(np.argmax(p))
            raise ValueError(
                f"muon {row} has |p| = {p[row]:.6g} GeV/c, not below p_max = {p_high:g} (the beam momentum)"
            )
        w = weights.astype(np.float64)
        z_scale = max(_weighted_quantile(z - z.min(), w, 0.5), 1e-3)
        z_low = float(z.min()) - EDGE_MARGIN * z_scale
        pt_scale = max(_weighted_quantile(pt, w, 0.5), 1e-3)
        p_scale = max(_weighted_quantile(p - p.min(), w, 0.5), 1e-3)
        p_low = float(p.min()) - EDGE_MARGIN * p_scale
        u = (p - p_low) / (p_high - p_low)
        scaled = (np.sqrt(r), np.log((z - z_low) / z_scale), np.arcsinh(pt / pt_scale), np.log(u) - np.log1p(-u))
        moments = [_weighted_moments(g, w) for g in scaled]
        return cls(
            r_mean=moments[0][0],
            r_std=moments[0][1],
            z_low=z_low,
            z_scale=z_scale,
            z_mean=moments[1][0],
            z_std=moments[1][1],
            pt_scale=pt_scale,
            pt_mean=moments[2][0],
            pt_std=moments[2][1],
            p_low=p_low,
            p_high=float(p_high),
            p_mean=moments[3][0],
            p_std=moments[3][1],
        )


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    return float(np.interp(q * cdf[-1], cdf, values[order]))


def _weighted_moments(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    mean = float(np.average(values, weights=weights))
    std = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    return mean, max(std, 1e-6)
