"""Physical muons <-> network features, as TensorFlow ops (DESIGN sections 1 and 3).

The networks never see physical units: a GAN learns badly from columns that span orders of magnitude
and from Cartesian transverse coordinates whose distribution is azimuthally symmetric. So:

- the transverse start point and transverse momentum become polar (radius, azimuth), the azimuth as
  (cos, sin) so that it has no wrap-around discontinuity;
- the longitudinal momentum is carried as |p|, whose lower edge (the sample's momentum cut) is then
  one column, like z's (the target front): z gets a log scaling above its edge, |p| a logit between
  the cut and the beam momentum, so generated muons respect the edges by construction and no muon is
  ever faster than the beam (:class:`training.scaling.Scaling`); pz = sqrt(p^2 - pT^2) >= 0;
- r gets a sqrt and pT an asinh scaling; every scaled column is standardised with constants fitted
  on the weighted training sample.

Feature layout (:data:`FEATURES`): charge, r, cos phi, sin phi, z, pt, cos theta, sin theta, p.
The generator emits the last eight; charge is its conditional input.

:func:`to_features` and :func:`to_physical` are exact inverses on the physical domain (r >= 0,
pT >= 0). A start point at x = y = 0 maps to the radius feature's floor with azimuth (1, 0) and back
to exactly 0. :func:`canonical` maps any raw generator output onto the image of :func:`to_features`
(radius clamped to its floor, azimuth normalised) without passing through physical units, so training
never differentiates ``hypot`` at 0; ``canonical(f) == to_features(to_physical(f))`` (tested).
"""

from __future__ import annotations

import tensorflow as tf

from service.contract.muons import MUON_PDG
from training.scaling import Scaling

FEATURES: tuple[str, ...] = ("charge", "r", "cos_phi", "sin_phi", "z", "pt", "cos_theta", "sin_theta", "p")
N_FEATURES = len(FEATURES)
N_GENERATED = N_FEATURES - 1  # everything but charge
_EPS = 1e-12


def to_features(physical: tf.Tensor, s: Scaling) -> tf.Tensor:
    """``(n, 7)`` physical muons (pdg, x, y, z, px, py, pz) -> ``(n, 9)`` features."""
    pdg, x, y, z, px, py, pz = tf.unstack(tf.cast(physical, tf.float32), axis=1)
    charge = -pdg / MUON_PDG
    r, cos_phi, sin_phi = _polar(x, y)
    pt, cos_theta, sin_theta = _polar(px, py)
    columns = [
        charge,
        (tf.sqrt(r) - s.r_mean) / s.r_std,
        cos_phi,
        sin_phi,
        (_log_above(z, s.z_low, s.z_scale) - s.z_mean) / s.z_std,
        (tf.asinh(pt / s.pt_scale) - s.pt_mean) / s.pt_std,
        cos_theta,
        sin_theta,
        _p_feature(tf.sqrt(pt * pt + pz * pz), s),
    ]
    return tf.stack(columns, axis=1)


def to_physical(features: tf.Tensor, s: Scaling) -> tf.Tensor:
    """``(n, 9)`` features -> ``(n, 7)`` physical muons; accepts raw generator output (clamps, normalises).

    pdg is exactly ``-13 * charge``.
    """
    charge, f_r, c_phi, s_phi, f_z, f_pt, c_theta, s_theta, f_p = tf.unstack(features, axis=1)
    r = tf.square(tf.nn.relu(f_r * s.r_std + s.r_mean))
    pt = s.pt_scale * tf.sinh(tf.nn.relu(f_pt * s.pt_std + s.pt_mean))
    x, y = _cartesian(r, c_phi, s_phi)
    px, py = _cartesian(pt, c_theta, s_theta)
    z = s.z_low + s.z_scale * tf.exp(f_z * s.z_std + s.z_mean)
    p = s.p_low + (s.p_high - s.p_low) * tf.sigmoid(f_p * s.p_std + s.p_mean)
    pz = tf.sqrt(tf.nn.relu(p * p - pt * pt))
    return tf.stack([-MUON_PDG * charge, x, y, z, px, py, pz], axis=1)


def canonical(features: tf.Tensor, s: Scaling) -> tf.Tensor:
    """Project raw features onto the physical domain in feature space: ``to_features(to_physical(f))``."""
    charge, f_r, c_phi, s_phi, f_z, f_pt, c_theta, s_theta, f_p = tf.unstack(features, axis=1)
    f_r, c_phi, s_phi = _floored(f_r, -s.r_mean / s.r_std, c_phi, s_phi)
    f_pt, c_theta, s_theta = _floored(f_pt, -s.pt_mean / s.pt_std, c_theta, s_theta)
    # |p| >= pT: where the raw output says otherwise, to_physical gives pz = 0, i.e. |p| = pT.
    pt = s.pt_scale * tf.sinh(f_pt * s.pt_std + s.pt_mean)
    f_p = tf.maximum(f_p, _p_feature(pt, s))
    return tf.stack([charge, f_r, c_phi, s_phi, f_z, f_pt, c_theta, s_theta, f_p], axis=1)


def _log_above(value: tf.Tensor | float, low: tf.Tensor | float, scale: float) -> tf.Tensor:
    """``log((value - low) / scale)``, kept finite (very negative) for values at or below the edge."""
    return tf.math.log(tf.maximum((value - low) / scale, 1e-30))


def _p_feature(p: tf.Tensor, s: Scaling) -> tf.Tensor:
    """Standardised ``logit((p - p_low) / (p_high - p_low))``, kept finite at and beyond both edges."""
    span = s.p_high - s.p_low
    # log of the distance above p_low minus log of the distance below p_high, both in units of the span
    logit = _log_above(p, s.p_low, span) - _log_above(s.p_high, p, span)
    return (logit - s.p_mean) / s.p_std


def _polar(a: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Radius and (cos, sin) of the azimuth; the origin gets azimuth (1, 0) so it maps back to exactly 0."""
    radius = tf.sqrt(a * a + b * b)
    safe = tf.where(radius > 0, radius, tf.ones_like(radius))
    cos = tf.where(radius > 0, a / safe, tf.ones_like(a))
    sin = tf.where(radius > 0, b / safe, tf.zeros_like(b))
    return radius, cos, sin


def _floored(
    f_radius: tf.Tensor, floor: float, cos: tf.Tensor, sin: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Radius feature clamped at its zero; a zero radius gets azimuth (1, 0), as :func:`_polar` gives it."""
    at_zero = f_radius <= floor
    cos, sin = _unit(cos, sin)
    return (
        tf.maximum(f_radius, floor),
        tf.where(at_zero, tf.ones_like(cos), cos),
        tf.where(at_zero, tf.zeros_like(sin), sin),
    )


def _unit(cos: tf.Tensor, sin: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    norm = tf.sqrt(cos * cos + sin * sin + _EPS)
    return cos / norm, sin / norm


def _cartesian(radius: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    cos, sin = _unit(cos, sin)
    return radius * cos, radius * sin
