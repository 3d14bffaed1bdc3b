"""The aux ("rareness") distribution: a Gaussian copula over one-tailed normal marginals (DESIGN section 4).

Plain aux: ``z ~ N(0, R)`` and ``a_i = Phi^-1((1 + Phi(z_i)) / 2)``, so each ``a_i`` is half-normal and
the four groups keep the joint dependence of the training sample. Boosted aux scales each marginal by
``s_i >= 1``. Both densities are analytic, so importance weights ``p_plain(a) / p_boosted(a)`` are exact.
Seed-enhanced aux (:class:`SeedProposal`) are a Gaussian mixture in the same normal space, whose density
is evaluated exactly too.

Everything is computed in float64 and in log space, with ``erf``/``erfc`` picked by side so that neither
the bulk nor the far tail loses precision.
"""

from __future__ import annotations

import numpy as np
from scipy import special

_SQRT2 = np.sqrt(2.0)
_LOG2 = np.log(2.0)
# Beyond this |z| or aux, tail probabilities are taken in log space (they underflow doubles near 38).
_FAR = 30.0
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
# a = 0 maps to z = -inf; the smallest positive double keeps z finite (about -37.5) where it matters not.
_TINY = np.finfo(np.float64).tiny


def half_normal_from_normal(z: np.ndarray) -> np.ndarray:
    """``Phi^-1((1 + Phi(z)) / 2)``: a standard normal mapped onto a one-tailed (half) normal, >= 0.

    With ``q = Phi(-|z|)``: ``sqrt2 erfinv(q)`` below zero and ``sqrt2 erfcinv(q)`` above, each exact on its
    side; in the far tail, where ``q`` underflows (``z > 38``) and ``erfcinv`` would give infinity,
    ``-Phi^-1(q / 2)`` from ``log q``.
    """
    z = np.asarray(z, dtype=np.float64)
    q = special.ndtr(-np.abs(z))
    negative, far = z < 0, z > _FAR
    near = ~negative & ~far
    out = np.empty_like(q)
    out[negative] = special.erfinv(q[negative]) * _SQRT2
    out[near] = special.erfcinv(q[near]) * _SQRT2
    out[far] = -special.ndtri_exp(special.log_ndtr(-z[far]) - _LOG2)
    return out


def normal_from_half_normal(a: np.ndarray) -> np.ndarray:
    """Inverse of :func:`half_normal_from_normal`: ``Phi^-1(2 Phi(a) - 1)`` for ``a >= 0``.

    ``2 Phi(a) - 1 = erf(a / sqrt2) = 1 - erfc(a / sqrt2)``: erf is exact near 0, erfc in the tail; in the
    far tail, where erfc underflows (``a > 38``: infinite z made boosted weights NaN), ``-Phi^-1(2 Phi(-a))``
    from ``log Phi(-a)``, finite for any finite ``a``.
    """
    a = np.maximum(np.asarray(a, dtype=np.float64), _TINY)
    x = a / _SQRT2
    low, far = x < 1.0, a > _FAR
    tail = ~low & ~far
    out = np.empty_like(x)
    out[low] = special.ndtri(special.erf(x[low]))
    out[tail] = -special.ndtri(special.erfc(x[tail]))
    out[far] = -special.ndtri_exp(_LOG2 + special.log_ndtr(-a[far]))
    return out


class AuxDistribution:
    """The copula with correlation ``R`` and per-group marginal scales ``s`` (1 = the plain distribution)."""

    def __init__(self, correlation: np.ndarray | list[list[float]], scale: np.ndarray | None = None) -> None:
        self.correlation = np.asarray(correlation, dtype=np.float64)
        dim = len(self.correlation)
        if self.correlation.shape != (dim, dim) or not np.allclose(self.correlation, self.correlation.T):
            raise ValueError(f"aux correlation must be a symmetric square matrix, got {self.correlation.tolist()}")
        try:
            self._cholesky = np.linalg.cholesky(self.correlation)
        except np.linalg.LinAlgError:
            raise ValueError("aux correlation is not positive definite") from None
        self.scale = np.ones(dim) if scale is None else np.asarray(scale, dtype=np.float64)
        if self.scale.shape != (dim,) or np.any(self.scale < 1) or not np.all(np.isfinite(self.scale)):
            raise ValueError(f"aux scales must be {dim} finite numbers >= 1, got {self.scale.tolist()}")
        # Copula log density: -z (R^-1 - I) z / 2 - log det R / 2.
        self._precision_minus_identity = np.linalg.inv(self.correlation) - np.eye(dim)
        self._half_log_det = np.log(np.diag(self._cholesky)).sum()
        self._log_scale = np.log(self.scale).sum()

    @property
    def dim(self) -> int:
        return len(self.correlation)

    def with_scale(self, scale: np.ndarray | list[float]) -> AuxDistribution:
        return AuxDistribution(self.correlation, np.asarray(scale, dtype=np.float64))

    def correlate(self, standard: np.ndarray) -> np.ndarray:
        """The copula's normals ``z ~ N(0, R)`` from independent standard normals ``(n, dim)``."""
        return standard @ self._cholesky.T

    def from_normals(self, standard: np.ndarray) -> np.ndarray:
        """Aux values (float64) from independent standard normals of shape ``(n, dim)``."""
        return self.scale * half_normal_from_normal(self.correlate(standard))

    def log_pdf(self, aux: np.ndarray) -> np.ndarray:
        """Log density of ``(n, dim)`` aux values; ``-inf`` outside the non-negative orthant."""
        aux = np.asarray(aux, dtype=np.float64)
        unit = aux / self.scale
        z = normal_from_half_normal(unit)
        copula = -0.5 * np.einsum("ni,ij,nj->n", z, self._precision_minus_identity, z) - self._half_log_det
        marginals = (_LOG2 - _LOG_SQRT_2PI - 0.5 * unit**2).sum(axis=1) - self._log_scale
        return np.where(np.all(aux >= 0, axis=1), copula + marginals, -np.inf)

    def log_weight(self, aux: np.ndarray, target: AuxDistribution) -> np.ndarray:
        """``log(target(aux) / self(aux))``: the importance weight of aux drawn from this distribution."""
        return target.log_pdf(aux) - self.log_pdf(aux)

    def log_pdf_normals(self, z: np.ndarray) -> np.ndarray:
        """Log density of the copula's correlated normals ``z ~ N(0, R)`` (plain aux is ``half_normal(z)``)."""
        white = np.linalg.solve(self._cholesky, np.asarray(z, dtype=np.float64).T).T
        return -0.5 * (white**2).sum(axis=1) - self._half_log_det - self.dim * _LOG_SQRT_2PI


class SeedProposal:
    """Aux drawn around seeds: a seed chosen uniformly, smeared by a Gaussian in the copula's normal space,
    plus a small "defensive" share drawn from the plain distribution.

    Seeds' aux values ``c_j`` map to normals ``g(c_j)`` (``g`` = :func:`normal_from_half_normal` per group),
    proposals are ``z = g(c_j) + sigma * eps`` and ``a = half_normal(z)``. Smearing in that space needs
    no reflection at ``a = 0``, and because plain aux is the same map of ``z ~ N(0, R)``, the importance
    weight ``p_plain(a) / q(a)`` equals ``N(z; 0, R) / q_z(z)``: the Jacobians cancel exactly.

    ``q_z = lambda N(0, R) + (1 - lambda) (1/m) sum_j N(g(c_j), sigma^2 I)`` is evaluated exactly (every
    component, log-sum-exp). The plain share ``lambda`` bounds every weight by ``1 / lambda``; without it
    the kernels' thin tails give a handful of muons far from the seeds enormous weights, and the
    effective sample size collapses to a few muons (Hesterberg's defensive mixture).
    """

    # Predicted aux are clipped here, not at 0, which would map to z = -37 and make that seed useless.
    AUX_FLOOR = 1e-3
    CHUNK_ELEMENTS = 1 << 19

    def __init__(
        self, seed_aux: np.ndarray, plain: AuxDistribution, sigma: float | None = None, plain_fraction: float = 0.1
    ) -> None:
        seed_aux = np.asarray(seed_aux, dtype=np.float64)
        if seed_aux.ndim != 2 or len(seed_aux) == 0 or seed_aux.shape[1] != plain.dim:
            raise ValueError(f"seed aux must be a non-empty (m, {plain.dim}) array, got shape {seed_aux.shape}")
        if not 0 <= plain_fraction < 1:
            raise ValueError(f"plain fraction must be in [0, 1), got {plain_fraction}")
        self.plain = plain
        self.plain_fraction = float(plain_fraction)
        self.centres = normal_from_half_normal(np.maximum(seed_aux, self.AUX_FLOOR))
        self.sigma = self.scott_sigma(self.centres) if sigma is None else float(sigma)
        if not self.sigma > 0:
            raise ValueError(f"smearing sigma must be > 0, got {self.sigma}")
        m, dim = self.centres.shape
        self._norms = (self.centres**2).sum(axis=1)
        self._log_norm = np.log(m) + dim * (np.log(self.sigma) + _LOG_SQRT_2PI)

    @staticmethod
    def scott_sigma(centres: np.ndarray) -> float:
        """Scott's rule for an isotropic kernel, ``m^(-1/(d+4))`` times the centres' RMS spread (floor 0.1)."""
        m, dim = centres.shape
        spread = float(np.sqrt(centres.var(axis=0).mean())) if m > 1 else 0.0
        return max(spread * m ** (-1.0 / (dim + 4)), 0.1)

    def sample_normals(self, choice: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Proposal normals from uniforms ``choice`` and standard normals ``(n, dim)``.

        ``choice < lambda`` draws from the plain copula, else picks seed ``floor((u - lambda) / (1 - lambda) m)``.
        """
        from_plain = choice < self.plain_fraction
        position = (choice - self.plain_fraction) / (1.0 - self.plain_fraction)
        index = np.clip((position * len(self.centres)).astype(np.int64), 0, len(self.centres) - 1)
        smeared = self.centres[index] + self.sigma * normals
        return np.where(from_plain[:, None], self.plain.correlate(normals), smeared)

    def log_pdf_normals(self, z: np.ndarray) -> np.ndarray:
        """Log density of the whole proposal in the copula's normal space."""
        z = np.asarray(z, dtype=np.float64)
        kernels = np.log1p(-self.plain_fraction) + self._log_kernel_mixture(z)
        if self.plain_fraction == 0:
            return kernels
        return np.logaddexp(np.log(self.plain_fraction) + self.plain.log_pdf_normals(z), kernels)

    def _log_kernel_mixture(self, z: np.ndarray) -> np.ndarray:
        """Log density of ``(1/m) sum_j N(z; g(c_j), sigma^2 I)``, over all components.

        Per chunk of rows: ``|z - c|^2 = |z|^2 + |c|^2 - 2 z.c`` by one matrix product, then a log-sum-exp
        done in place on a cache-sized buffer (about 4 MB), in float64.
        """
        inverse_variance = 1.0 / self.sigma**2
        scaled_centres = self.centres.T * inverse_variance
        offsets = -0.5 * inverse_variance * self._norms
        out = np.empty(len(z))
        rows = max(16, self.CHUNK_ELEMENTS // len(self.centres))
        for lo in range(0, len(z), rows):
            chunk = z[lo : lo + rows]
            exponent = chunk @ scaled_centres
            exponent += offsets
            peak = exponent.max(axis=1)
            exponent -= peak[:, None]
            np.exp(exponent, out=exponent)
            out[lo : lo + len(chunk)] = np.log(exponent.sum(axis=1)) + peak
        return out - 0.5 * inverse_variance * (z**2).sum(axis=1) - self._log_norm
