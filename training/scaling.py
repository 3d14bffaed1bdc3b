"""Fitted constants of the feature scalings (numpy only, so evaluation and rareness need no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Scaling:
    """Fitted constants of the monotone scalings; stored in ``model.json`` under hyperparameters.

    Each scaled column is ``(g(v) - mean) / std`` with ``g(r) = sqrt(r)``,
    ``g(z) = asinh((z - z_center) / z_scale)``, ``g(pt) = asinh(pt / pt_scale)``,
    ``g(pz) = asinh(pz / pz_scale)``.
    """

    r_mean: float
    r_std: float
    z_center: float
    z_scale: float
    z_mean: float
    z_std: float
    pt_scale: float
    pt_mean: float
    pt_std: float
    pz_scale: float
    pz_mean: float
    pz_std: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> Scaling:
        return cls(**values)

    @classmethod
    def fit(cls, physical: np.ndarray, weights: np.ndarray) -> Scaling:
        """Weighted constants from ``(n, 7)`` physical muons: medians/IQRs set the asinh knee, then standardise."""
        x, y, z, px, py, pz = (physical[:, i].astype(np.float64) for i in range(1, 7))
        r = np.hypot(x, y)
        pt = np.hypot(px, py)
        w = weights.astype(np.float64)
        z_center = _weighted_quantile(z, w, 0.5)
        z_scale = max((_weighted_quantile(z, w, 0.75) - _weighted_quantile(z, w, 0.25)) / 2, 1e-3)
        pt_scale = max(_weighted_quantile(pt, w, 0.5), 1e-3)
        pz_scale = max(_weighted_quantile(np.abs(pz), w, 0.5), 1e-3)
        g_r = np.sqrt(r)
        g_z = np.arcsinh((z - z_center) / z_scale)
        g_pt = np.arcsinh(pt / pt_scale)
        g_pz = np.arcsinh(pz / pz_scale)
        moments = [_weighted_moments(g, w) for g in (g_r, g_z, g_pt, g_pz)]
        return cls(
            r_mean=moments[0][0],
            r_std=moments[0][1],
            z_center=z_center,
            z_scale=z_scale,
            z_mean=moments[1][0],
            z_std=moments[1][1],
            pt_scale=pt_scale,
            pt_mean=moments[2][0],
            pt_std=moments[2][1],
            pz_scale=pz_scale,
            pz_mean=moments[3][0],
            pz_std=moments[3][1],
        )


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    return float(np.interp(q * cdf[-1], cdf, values[order]))


def _weighted_moments(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    mean = float(np.average(values, weights=weights))
    std = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    return mean, max(std, 1e-6)
