"""Physical muons <-> network features, as TensorFlow ops (DESIGN sections 1 and 3).

The networks never see physical units: a GAN learns badly from columns that span orders of magnitude
and from Cartesian transverse coordinates whose distribution is azimuthally symmetric. So the start
point becomes (r, azimuth) and z; the momentum becomes |p|, pT and the azimuth of pT; azimuths as
(cos, sin), which have no wrap-around discontinuity.

Every feature maps onto its physical range through a bounded monotone map, so that **every generator
output, for any input, is a physical muon by construction** (no rejection, no clipping of muons):

- |p| in [edge(z), p_high] (momentum cut at that depth, beam momentum) and z in [z_low, z_high]
  (target front, the sample's last muon plus a margin): logits in units of the span. The cut falls
  with depth for a sample selected at the absorber's exit, so its edge is a piecewise-linear function
  of z (:func:`training.parameterisation.scaling._momentum_edge`) and z is generated first;
- pT in [0, |p| sin_theta_max] with sin_theta_max < 1 (the sine of the largest polar angle), so
  pT < |p| and pz = |p| sqrt((1 - u)(1 + u)) > 0 with u = pT / |p|;
- r in [0, r_max] (the sample's region plus a margin).

r and pT sit at exactly 0 for a share of muons (SHiP's primary vertex; pT = 0), so they are floored
rather than logit-mapped. Both are first stretched so that the inverse saturates at the upper edge,
``R = r_max atanh(r / r_max)`` and ``m atanh(pT / m)`` with ``m = |p| sin_theta_max``. pT then takes
``asinh(. / pt_scale)`` (the scaling the first models learned well); R takes the sample's quantile map
onto normal scores (piecewise linear, :func:`training.parameterisation.scaling._normal_scores`), because the radius of a
painted beam is a narrow ring inside a wide halo, which no fixed map puts near a normal, and the
generator renders a column's tails only as far as its normal noise reaches. The edge of pT moves with
|p|: that is what keeps every muon forward. No Sin or Cos op: onnxruntime's round differently in their
vectorised and scalar paths, which made a muon depend on how rows were split into calls (the service
promises bit-identical slices; measured on a polar-angle variant); sqrt, tanh and the logistic function
do not.
The other scaled columns are standardised with constants fitted on the weighted training sample
(:class:`training.parameterisation.scaling.Scaling`). The exported generator puts its raw output through the marginal
calibration (:mod:`training.model.calibration`) before :func:`to_physical`; training never does.

Feature layout (:data:`FEATURES`): charge, r, cos phi, sin phi, z, pt, cos psi, sin psi, p
(phi: azimuth of the start point, psi: azimuth of the momentum). The generator emits the last eight;
charge is its conditional input.

:func:`to_features` and :func:`to_physical` are exact inverses inside the physical region; values
beyond an edge (a user's seed muon outside the training region) get finite, extreme features.
:func:`canonical` maps any raw generator output onto the image of :func:`to_features` (radius and
pT clamped at their floors, azimuths normalised) without passing through physical units, so
training never differentiates ``hypot`` at 0; ``canonical(f) == to_features(to_physical(f))`` away
from the saturated upper edges (tested).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import tensorflow as tf

from service.contract.muons import MUON_PDG
from training.parameterisation.scaling import Scaling

FEATURES: tuple[str, ...] = ("charge", "r", "cos_phi", "sin_phi", "z", "pt", "cos_psi", "sin_psi", "p")
N_FEATURES = len(FEATURES)
N_GENERATED = N_FEATURES - 1  # everything but charge
_EPS = 1e-12
# atanh's argument stays below this, so a value at or beyond an upper edge gets a finite feature.
_BELOW_ONE = 1.0 - 1e-7


def to_features(physical: tf.Tensor, s: Scaling) -> tf.Tensor:
    """``(n, 7)`` physical muons (pdg, x, y, z, px, py, pz) -> ``(n, 9)`` features."""
    pdg, x, y, z, px, py, pz = tf.unstack(tf.cast(physical, tf.float32), axis=1)
    r, cos_phi, sin_phi = _polar(x, y)
    pt, cos_psi, sin_psi = _polar(px, py)
    p = tf.sqrt(pt * pt + pz * pz)
    pt_edge = p * s.sin_theta_max
    columns = [
        -pdg / MUON_PDG,
        piecewise_linear(_radius_log(s.r_max * _atanh_below(r / s.r_max), s), s.r_knots, s.r_scores, extend="above"),
        cos_phi,
        sin_phi,
        (_logit_between(z, s.z_low, s.z_high) - s.z_mean) / s.z_std,
        (tf.asinh(pt_edge * _atanh_below(tf.math.divide_no_nan(pt, pt_edge)) / s.pt_scale) - s.pt_mean) / s.pt_std,
        cos_psi,
        sin_psi,
        (_logit_between(p, _momentum_edge(z, s), s.p_high) - s.p_mean) / s.p_std,
    ]
    return tf.stack(columns, axis=1)


def to_physical(features: tf.Tensor, s: Scaling) -> tf.Tensor:
    """``(n, 9)`` features -> ``(n, 7)`` physical muons; accepts any raw generator output.

    pdg is exactly ``-13 * charge``; every output lies in the physical region (module docstring).
    """
    charge, f_r, c_phi, s_phi, f_z, f_pt, c_psi, s_psi, f_p = tf.unstack(features, axis=1)
    r = s.r_max * tf.tanh(_radius_exp(piecewise_linear(f_r, s.r_scores, s.r_knots, extend="above"), s) / s.r_max)
    z = s.z_low + (s.z_high - s.z_low) * tf.sigmoid(f_z * s.z_std + s.z_mean)
    edge = _momentum_edge(z, s)
    p = edge + (s.p_high - edge) * tf.sigmoid(f_p * s.p_std + s.p_mean)
    pt_edge = p * s.sin_theta_max
    u = s.sin_theta_max * tf.tanh(s.pt_scale * tf.sinh(tf.nn.relu(f_pt * s.pt_std + s.pt_mean)) / pt_edge)  # pT/|p|
    x, y = _cartesian(r, c_phi, s_phi)
    px, py = _cartesian(p * u, c_psi, s_psi)
    pz = p * tf.sqrt((1.0 - u) * (1.0 + u))
    return tf.stack([-MUON_PDG * charge, x, y, z, px, py, pz], axis=1)


def canonical(features: tf.Tensor, s: Scaling) -> tf.Tensor:
    """Project raw features onto the physical domain in feature space: ``to_features(to_physical(f))``."""
    charge, f_r, c_phi, s_phi, f_z, f_pt, c_psi, s_psi, f_p = tf.unstack(features, axis=1)
    f_r, c_phi, s_phi = _floored(f_r, s.r_scores[0], c_phi, s_phi)
    f_pt, c_psi, s_psi = _floored(f_pt, -s.pt_mean / s.pt_std, c_psi, s_psi)
    return tf.stack([charge, f_r, c_phi, s_phi, f_z, f_pt, c_psi, s_psi, f_p], axis=1)


def _momentum_edge(z: tf.Tensor, s: Scaling) -> tf.Tensor:
    """The lowest |p| at depth z: linear between the knots, flat beyond them, never below ``p_low``.

    The floor absorbs float32 rounding.
    """
    return tf.maximum(piecewise_linear(z, s.p_edge_z, s.p_edge, extend="none"), s.p_low)


def piecewise_linear(
    x: tf.Tensor, knots: list[float], values: list[float], extend: Literal["none", "above", "both"]
) -> tf.Tensor:
    """The line through (``knots``, ``values``): beyond the end knots flat, or continued with the end slopes.

    A sum of clipped ramps, one per knot interval, as one MatMul (the op the networks are made of, so
    a muon does not depend on how rows are split into calls); ``extend`` continues the last interval's
    slope (``"above"``) or both end intervals' (``"both"``), so that the line is unbounded that way and
    stays invertible there.
    """
    k, v = np.asarray(knots, np.float64), np.asarray(values, np.float64)
    widths = tf.constant(np.diff(k), tf.float32)
    ramps = tf.clip_by_value((x[:, None] - tf.constant(k[:-1], tf.float32)) / widths, 0.0, 1.0)
    line = v[0] + tf.matmul(ramps, tf.constant(np.diff(v)[:, None], tf.float32))[:, 0]
    if extend != "none":
        line += tf.nn.relu(x - k[-1]) * float((v[-1] - v[-2]) / (k[-1] - k[-2]))
    if extend == "both":
        line -= tf.nn.relu(k[0] - x) * float((v[1] - v[0]) / (k[1] - k[0]))
    return line


def _radius_log(stretched: tf.Tensor, s: Scaling) -> tf.Tensor:
    """The coordinate of r's knots: ``asinh(R / r_core)`` (:func:`training.parameterisation.scaling.radius_log`)."""
    return tf.asinh(stretched / s.r_core) if s.r_core > 0 else stretched


def _radius_exp(coordinate: tf.Tensor, s: Scaling) -> tf.Tensor:
    """The inverse of :func:`_radius_log`; exactly 0 at the floor, where the map's first knot is 0."""
    return s.r_core * tf.sinh(coordinate) if s.r_core > 0 else coordinate


def _log_above(value: tf.Tensor | float, low: tf.Tensor | float, scale: float) -> tf.Tensor:
    """``log((value - low) / scale)``, kept finite (very negative) for values at or below the edge."""
    return tf.math.log(tf.maximum((value - low) / scale, 1e-30))


def _logit_between(value: tf.Tensor, low: tf.Tensor | float, high: float) -> tf.Tensor:
    """``logit((value - low) / (high - low))``, kept finite at and beyond both edges.

    The log of the distance above ``low`` minus the log of the distance below ``high``, both in units
    of the span: near ``low`` this is the log scaling a hard lower edge (target front, momentum cut) wants.
    """
    span = high - low
    return _log_above(value, low, span) - _log_above(high, value, span)


def _atanh_below(u: tf.Tensor) -> tf.Tensor:
    return tf.atanh(tf.minimum(u, _BELOW_ONE))


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
    """Radius (or pT) feature clamped at its zero; zero gets azimuth (1, 0), as :func:`_polar` gives it."""
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
    """Both components exactly +0 at radius 0: 0 times a negative azimuth component is -0, which files print."""
    cos, sin = _unit(cos, sin)
    zero = tf.zeros_like(radius)
    return tf.where(radius > 0, radius * cos, zero), tf.where(radius > 0, radius * sin, zero)
