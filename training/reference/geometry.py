"""Where protons interact: the beam spot across the target face and the depth of the first interaction."""

from __future__ import annotations

import numpy as np

from training.reference.settings import SourceSettings


def interaction_points(n: int, settings: SourceSettings, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` primary interaction points in the SHiP frame, cm.

    x, y: Gaussian smearing plus uniform painting of a disc (FairShip's beam model). z: exponential in
    the proton interaction length, truncated to the target (it is long enough that nearly all interact).
    """
    radius = settings.beam_paint_radius * np.sqrt(rng.uniform(size=n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    x = radius * np.cos(angle) + rng.normal(0.0, settings.beam_sigma, n)
    y = radius * np.sin(angle) + rng.normal(0.0, settings.beam_sigma, n)
    lam = settings.lambda_proton
    reach = -np.expm1(-settings.target_length / lam)  # P(interaction within the target)
    depth = -lam * np.log1p(-reach * rng.uniform(size=n))
    return np.column_stack([x, y, settings.target_front_z + depth])
