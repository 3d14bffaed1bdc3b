"""Tail biasing: spend the CPU on the muons of SHiP's shield region, |p| > 100 GeV/c and pT > 3 GeV/c, with
exact weights (``muongan sample --bias tail``).

The unbiased source puts about one muon in 1e5 protons there, and most of its CPU into collisions of
hadrons below 100 GeV, which cannot make such a muon: a collision's products share the beam's energy plus
the struck nucleon's mass. Biasing changes only how often each random choice is made, never what it
makes, and every muon's weight is divided by the change, so every weighted estimate keeps its expectation
(in the bulk as in the tails; tests/test_reference_biasing.py checks it against the unbiased source):

- **hopeless products of the proton's collision, rouletted**: a hadron or photon of the primary collision
  whose energy plus a nucleon's mass is below the region's momentum (no decay, conversion or collision of
  it or its products can reach the region) is followed with ``tail_primary_chance``, weighted up: Pythia
  makes a collision in ~1e-4 s, following its cascade costs ten times more. Rouletting only those keeps
  the region's muons at their own weights (rouletting whole collisions with nothing in reach made rare
  muons of the region 20 times heavier, through the later collisions of their fast hadrons);
- **soft collisions, rouletted**: a collision whose beam energy plus a nucleon mass is below the region's
  momentum is made with ``tail_soft_chance`` times the unbiased source's chance, its products weighted up;
- **decays, split**: a pi, K or K0L that could decay into a muon of the region (energy above the region's
  momentum, pT above the region's less 0.3 GeV, more than the muon's largest momentum in the hadron's rest
  frame, 0.236 GeV for K -> mu nu) decays ``tail_decay_splits`` times instead of ``decay_splits``;
- **forced decays, split**: a charm hadron of the charm and beauty runs, or a light resonance of the
  forced-resonance run or of a collision replayed in it, that could decay into a muon of the region
  (energy above the region's momentum, pT above the region's less the largest muon momentum in its rest
  frame: 0.98 GeV for D_s -> mu nu, 0.50 GeV for phi -> mu mu) is decayed again ``tail_charm_splits`` or
  ``tail_resonance_splits`` times, replacing its own decay (:mod:`training.reference.redecay`);
- **resonances, replayed more**: every collision that could feed the region is made again in the
  instance forcing light resonances into muon channels (share ``tail_resonance_fraction``); the forced runs
  of the proton's collision have more events: charm and beauty ``tail_forced_factor`` times, resonances
  ``tail_resonance_factor`` times (their muons carry less of the region's squared weight per CPU-second:
  the factors that give the most ESS per CPU-second, bench/RESULTS.md);
- **no equalisation in the region**: muons of the region keep their own weights (floor 0).

The copies of a split decay share their parent, so their muons are not independent: errors of rates
over the file's independent batches of protons (``independent_blocks``) count that, the plain
(sum w)^2 / sum w^2 does not (bench/tail_biasing.py reports both).

Each muon also carries ``bias``: how much larger its weight is than the same muon's in the unbiased
source, so that a biased run can tell what the unbiased one would have given (its sum of squared weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from training.reference.events import Hadrons
from training.reference.pythia_setup import CHARM_HADRONS, LIGHT_RESONANCES, RESONANCE
from training.reference.settings import SourceSettings

# The largest muon momentum in the rest frame of a pi, K or K0L (K -> mu nu: 0.236 GeV), with room to spare.
_REST_FRAME_MOMENTUM = 0.3
# The hadrons of each forced run decayed again when in reach, and the largest muon momentum in their rest
# frame: a charm hadron's (D_s -> mu nu: 0.98 GeV), a light resonance's (phi -> mu mu: 0.50 GeV).
_SPLIT: dict[str, tuple[tuple[int, ...], float]] = {
    "charm": (CHARM_HADRONS, 1.0),
    "beauty": (CHARM_HADRONS, 1.0),
    RESONANCE: (LIGHT_RESONANCES, 0.6),
}


@dataclass(frozen=True)
class Biasing:
    """The biasing rules of a run; with ``tail_biasing`` off every rule is the unbiased source's."""

    settings: SourceSettings

    @property
    def on(self) -> bool:
        return self.settings.tail_biasing

    def in_region(self, momentum: np.ndarray) -> np.ndarray:
        """Whether muons with (px, py, pz) lie in the region the biasing serves."""
        s = self.settings
        return (np.linalg.norm(momentum[:, :3], axis=1) > s.tail_momentum) & (
            np.hypot(momentum[:, 0], momentum[:, 1]) > s.tail_pt
        )

    def feeds_region(self, energy: np.ndarray) -> np.ndarray:
        """Whether a collision of a beam of this energy (on a nucleon at rest) can make a muon of the region."""
        return energy + 1.0 >= self.settings.tail_momentum

    def in_reach(self, momentum: np.ndarray) -> np.ndarray:
        """Whether particles with (px, py, pz, E) could decay (or convert) into a muon of the region."""
        s = self.settings
        return (momentum[:, 3] > s.tail_momentum) & (
            np.hypot(momentum[:, 0], momentum[:, 1]) > s.tail_pt - _REST_FRAME_MOMENTUM
        )

    def split_in_reach(self, run: str, pid: np.ndarray, momentum: np.ndarray) -> np.ndarray:
        """Whether particles (``pid``, (px, py, pz, E)) of a forced run are hadrons that run forces whose
        decay could make a muon of the region (then decayed ``forced_splits`` times); never when unbiased."""
        s = self.settings
        if not self.on:
            return np.zeros(len(pid), dtype=bool)
        forced, rest_frame = _SPLIT[run]
        return (
            np.isin(np.abs(pid), forced)
            & (momentum[:, 3] > s.tail_momentum)
            & (np.hypot(momentum[:, 0], momentum[:, 1]) > s.tail_pt - rest_frame)
        )

    def forced_splits(self, run: str) -> int:
        """Decays per hadron of a forced run in reach of the region."""
        return self.settings.tail_resonance_splits if run == RESONANCE else self.settings.tail_charm_splits

    def decay_splits(self, momentum: np.ndarray) -> np.ndarray:
        """Decays sampled per hadron with (px, py, pz, E)."""
        s = self.settings
        if not self.on:
            return np.full(len(momentum), s.decay_splits)
        return np.where(self.in_reach(momentum), s.tail_decay_splits, s.decay_splits)

    def primary_roulette(self, hadrons: Hadrons, rng: np.random.Generator) -> Hadrons:
        """The primary collisions' hadrons and photons that are followed: all that could still lead to a
        muon of the region (energy plus a nucleon's mass above its momentum), the others with
        ``tail_primary_chance``, weighted back, so that no muon of the region carries a rouletted weight."""
        if not self.on:
            return hadrons
        chance = np.where(self.feeds_region(hadrons.momentum[:, 3]), 1.0, self.settings.tail_primary_chance)
        rows = np.flatnonzero(rng.uniform(size=len(chance)) < chance)
        kept = hadrons.take(rows)
        return replace(kept, weight=kept.weight / chance[rows], bias=kept.bias / chance[rows])

    def collision_chance(self, energy: np.ndarray, chance: np.ndarray, least: np.ndarray) -> np.ndarray:
        """The chance of making each collision, from the unbiased source's ``chance`` (at least ``least``)."""
        if not self.on:
            return chance
        soft = np.clip(chance * self.settings.tail_soft_chance, least, 1.0)
        return np.where(self.feeds_region(energy), chance, soft)

    def resonance_share(self, energy: np.ndarray) -> np.ndarray:
        """The share of collisions made again with light resonances forced into muon channels."""
        share = np.full(len(energy), self.settings.cascade_resonance_fraction)
        if not self.on:
            return share
        return np.where(self.feeds_region(energy), self.settings.tail_resonance_fraction, share)

    def forced_factor(self, run: str) -> float:
        """Events of a forced run per POT, relative to the unbiased source."""
        if not self.on:
            return 1.0
        return self.settings.tail_resonance_factor if run == RESONANCE else self.settings.tail_forced_factor

    def floors(self, momentum: np.ndarray) -> np.ndarray:
        """The equalisation floor of each muon: none in the region when biased."""
        floor = np.full(len(momentum), self.settings.weight_floor)
        return np.where(self.in_region(momentum), 0.0, floor) if self.on else floor

    def describe(self) -> str:
        """The metadata's ``biasing`` entry: none, or what was biased and how."""
        s = self.settings
        if not self.on:
            return json.dumps({"mode": "none"})
        return json.dumps(
            {
                "mode": "tail",
                "region": {"p_min_GeV": s.tail_momentum, "pt_min_GeV": s.tail_pt},
                "hopeless_primary_product_chance": s.tail_primary_chance,
                "soft_collision_chance": s.tail_soft_chance,
                "decay_splits_in_reach": s.tail_decay_splits,
                "charm_decay_splits_in_reach": s.tail_charm_splits,
                "resonance_decay_splits_in_reach": s.tail_resonance_splits,
                "resonance_replay_share_in_reach": s.tail_resonance_fraction,
                "forced_run_factor": {"resonance": s.tail_resonance_factor, "charm and beauty": s.tail_forced_factor},
                "equalisation_floor_in_region": 0.0,
                "weights": "exact: every biased choice divides the muon's weight by its change, so weighted "
                "estimates are unbiased everywhere; split decays make correlated rows (use independent_blocks)",
            }
        )
