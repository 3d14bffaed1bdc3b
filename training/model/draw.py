"""Plain generator inputs (DESIGN section 4): copula aux, charge by the mu+ fraction, normal noise.

Used by evaluation and the periodic figure of merit. The service has its own counter-based version
(per-block Philox streams); this one only needs to be correct in distribution.
"""

from __future__ import annotations

import numpy as np

from training.preparation.rareness import from_copula_normal


def draw_plain(
    n: int, correlation: np.ndarray, mu_plus_fraction: float, noise_dim: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Inputs by ONNX name: ``noise`` (n, noise_dim), ``aux`` (n, 4), ``charge`` (n, 1), float32."""
    z = rng.standard_normal((n, len(correlation))) @ np.linalg.cholesky(correlation).T
    charge = np.where(rng.random(n) < mu_plus_fraction, 1.0, -1.0)
    return {
        "noise": rng.standard_normal((n, noise_dim), dtype=np.float32),
        "aux": from_copula_normal(z).astype(np.float32),
        "charge": charge.astype(np.float32)[:, None],
    }
