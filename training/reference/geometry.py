"""Target and absorber as blocks along z: where particles interact or decay, and what muons lose.

Everything works on whole columns of particles. Blocks are transversely unbounded (the target is 30 cm
square and sits in iron shielding; hadrons and muons leaving its side are few and soft) and end at the
exit plane, where FairShip's sensitive plane stops every track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.reference.materials import KAON_TO_PROTON, MATERIALS, PION_TO_PROTON, Material
from training.reference.settings import SourceSettings

MUON_MASS = 0.1056584
_KIND_RATIO = (1.0, PION_TO_PROTON, KAON_TO_PROTON)  # nucleons, pions, kaons
_KAONS = (321, 130, 310)
_PIONS = (211,)


def interaction_kind(pid: np.ndarray) -> np.ndarray:
    """0 for baryons, 1 for pions, 2 for kaons: the column of a hadron's interaction length."""
    kind = np.zeros(len(pid), dtype=np.int64)
    kind[np.isin(np.abs(pid), _PIONS)] = 1
    kind[np.isin(np.abs(pid), _KAONS)] = 2
    return kind


def rotate_to(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Rotate ``(n, 3)`` vectors given in a frame whose z axis is ``direction`` (unit, row by row) into
    the lab frame: Rodrigues' rotation taking z onto the direction."""
    axis = np.column_stack([-direction[:, 1], direction[:, 0], np.zeros(len(direction))])  # z x d
    cos = direction[:, 2:3]
    sin2 = np.sum(axis**2, axis=1, keepdims=True)
    factor = np.divide(1.0 - cos, sin2, out=np.full_like(cos, 0.5), where=sin2 > 1e-24)
    dot = np.sum(axis * vectors, axis=1, keepdims=True)
    return vectors * cos + np.cross(axis, vectors) + axis * dot * factor


@dataclass(frozen=True)
class Layout:
    """Block edges along z and each block's material."""

    edges: np.ndarray  # (K + 1,) z of block boundaries, cm; the last is the exit plane
    materials: tuple[Material, ...]
    absorber_start: float
    half_width: float
    half_height: float

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> Layout:
        lengths = [length for _, length, _ in settings.layers]
        edges = settings.target_front_z + np.concatenate([[0.0], np.cumsum(lengths)])
        materials = tuple(MATERIALS[name].diluted(fraction) for name, _, fraction in settings.layers)
        start = float(edges[len(lengths) - settings.absorber_layers])
        return cls(edges, materials, start, settings.exit_half_width, settings.exit_half_height)

    @property
    def exit_z(self) -> float:
        return float(self.edges[-1])

    def block(self, z: np.ndarray) -> np.ndarray:
        """Index of the block each z lies in (clipped to the first and last)."""
        return np.clip(np.searchsorted(self.edges, z, side="right") - 1, 0, len(self.materials) - 1)

    def proton_fraction(self, z: np.ndarray) -> np.ndarray:
        return np.array([m.proton_fraction for m in self.materials])[self.block(z)]

    def path_lengths(self, z: np.ndarray, cos_z: np.ndarray) -> np.ndarray:
        """``(n, K)`` path length in each block from ``z`` to the exit plane along a direction with
        z-cosine ``cos_z``; a muon going sideways or backward (``cos_z`` <= 0) never gets there, and gets
        paths too long for any energy to survive (finite, so that the energy loss raises no overflow)."""
        low = np.maximum(self.edges[:-1][None, :], z[:, None])
        return np.clip(self.edges[1:][None, :] - low, 0.0, None) / np.maximum(cos_z, 1e-12)[:, None]

    def interaction_rates(self, pid: np.ndarray) -> np.ndarray:
        """``(n, K)`` nuclear interaction rate (1/cm) of each hadron in each block."""
        lengths = np.array([[m.interaction_length * r for r in _KIND_RATIO] for m in self.materials])
        return 1.0 / lengths[:, interaction_kind(pid)].T

    def exit_energy(self, position: np.ndarray, momentum: np.ndarray) -> np.ndarray:
        """Muon energy at the exit plane after continuous loss ``a + b E`` in each block; below the muon
        mass (or negative) where the muon stops first. ``momentum`` is (px, py, pz) at production."""
        energy = np.sqrt(np.sum(momentum**2, axis=1) + MUON_MASS**2)
        cos_z = momentum[:, 2] / np.linalg.norm(momentum, axis=1)
        lengths = self.path_lengths(position[:, 2], cos_z)
        for k, material in enumerate(self.materials):
            scale = material.ionisation / material.radiative
            energy = (energy + scale) * np.exp(-material.radiative * lengths[:, k]) - scale
        return energy

    def needed_energy(self, z: np.ndarray, exit_energy: float) -> np.ndarray:
        """Energy a muon needs at ``z``, going straight along z, to reach the exit plane with ``exit_energy``:
        the least any muon made at ``z`` needs."""
        lengths = self.path_lengths(z, np.ones(len(z)))
        energy = np.full(len(z), exit_energy)
        for k in reversed(range(len(self.materials))):
            material = self.materials[k]
            scale = material.ionisation / material.radiative
            energy = (energy + scale) * np.exp(material.radiative * lengths[:, k]) - scale
        return energy

    def crosses_exit(self, position: np.ndarray, momentum: np.ndarray) -> np.ndarray:
        """Whether a straight track reaches the exit plane inside FairShip's sensitive box."""
        forward = momentum[:, 2] > 0
        pz = np.where(forward, momentum[:, 2], 1.0)
        reach = (self.exit_z - position[:, 2]) / pz
        x = position[:, 0] + momentum[:, 0] * reach
        y = position[:, 1] + momentum[:, 1] * reach
        return forward & (np.abs(x) < self.half_width) & (np.abs(y) < self.half_height)


@dataclass(frozen=True)
class Fates:
    """Two competing processes along a straight path to the exit plane: the one followed (a hadron's decay,
    a photon's conversion into a muon pair: ``decay``) and the one it races (a nuclear interaction, a
    conversion into e+ e-: ``interaction``)."""

    decay: np.ndarray  # (n,) probability that the followed process happens first, before the plane
    interaction: np.ndarray  # (n,) probability that the other one happens first, before the plane
    decay_parts: np.ndarray  # (n, K) the same per block
    interaction_parts: np.ndarray
    rate: np.ndarray  # (n, K) total rate per block
    lengths: np.ndarray  # (n, K) path length per block
    start: np.ndarray  # (n, K) path length before each block

    def take(self, rows: np.ndarray) -> Fates:
        return Fates(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


def competing(lengths: np.ndarray, followed: np.ndarray, other: np.ndarray) -> Fates:
    """Piecewise-constant competing hazards: ``(n, K)`` path lengths and rates (1/cm) of the followed and
    the other process in each block; the chance that each happens first, per block and in all."""
    rate = followed + other
    depth = np.cumsum(rate * lengths, axis=1)
    entering = np.exp(-(depth - rate * lengths))
    happens = entering - np.exp(-depth)  # something happens in this block
    decay_parts = happens * followed / rate
    interaction_parts = happens * other / rate
    start = np.cumsum(lengths, axis=1) - lengths
    return Fates(
        decay_parts.sum(axis=1), interaction_parts.sum(axis=1), decay_parts, interaction_parts, rate, lengths, start
    )


def fates(layout: Layout, z: np.ndarray, cos_z: np.ndarray, pid: np.ndarray, decay_rate: np.ndarray) -> Fates:
    """Probabilities of decay and interaction in each block, for hadrons at ``z`` with z-cosine ``cos_z``
    and decay rate ``decay_rate`` (1/cm, 0 for stable ones)."""
    lengths = layout.path_lengths(z, cos_z)
    return competing(lengths, np.broadcast_to(decay_rate[:, None], lengths.shape), layout.interaction_rates(pid))


def sample_distance(f: Fates, parts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Path length to the point of the process whose per-block probabilities are ``parts``, given that it
    happens first: the block by those probabilities, then a truncated exponential inside it."""
    cumulative = np.cumsum(parts, axis=1)
    u = rng.uniform(size=len(parts)) * cumulative[:, -1]
    k = np.minimum((cumulative < u[:, None]).sum(axis=1), parts.shape[1] - 1)
    rows = np.arange(len(parts))
    rate, length = f.rate[rows, k], f.lengths[rows, k]
    inside = -np.log1p(-rng.uniform(size=len(parts)) * -np.expm1(-rate * length)) / rate
    return f.start[rows, k] + np.minimum(inside, length)


# FairShip's beam spot as run_simScript.py --MuonBack paints it by default: --SmearBeam, --PaintBeam (cm).
FAIRSHIP_SMEAR_CM, FAIRSHIP_PAINT_CM = 0.8, 5.0


def beam_offsets(n: int, sigma: float, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FairShip's beam spot (``CalculateBeamOffset`` in shipgen), x and y in cm: a Gaussian of ``sigma`` plus a
    point on the circle of ``radius``, uniform in angle; FairShip's defaults are the constants above."""
    angle = rng.uniform(0.0, 2 * np.pi, n)
    x = radius * np.cos(angle) + rng.normal(0.0, 1.0, n) * sigma
    y = radius * np.sin(angle) + rng.normal(0.0, 1.0, n) * sigma
    return x, y


def interaction_points(n: int, layout: Layout, settings: SourceSettings, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` primary interaction points in the SHiP frame, cm.

    x, y: FairShip's beam model when the settings ask for one (``CalculateBeamOffset`` in shipgen: a
    Gaussian of ``beam_sigma`` plus a point on the circle of radius ``beam_paint_radius``, uniform in
    angle: a ring, not a disc), else on the axis as in SHiP's production. z: the protons' interactions
    in the blocks.
    """
    x, y = beam_offsets(n, settings.beam_sigma, settings.beam_paint_radius, rng)
    front = np.full(n, settings.target_front_z)
    f = fates(layout, front, np.ones(n), np.full(n, 2212), np.zeros(n))
    return np.column_stack([x, y, front + sample_distance(f, f.interaction_parts, rng)])
