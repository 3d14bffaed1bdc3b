"""Every physical and numerical choice of the reference source, in one frozen record saved with the sample.

Keeping them together means a sample file says exactly what made it (``generator_settings`` metadata),
and a test or a study can change one number without touching code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# The metadata key under which a sample records its independent batches of protons (rows and run of
# each, in file order): what shower-aware errors of rates are taken over (training.evaluation.showers).
BLOCKS = "independent_blocks"


@dataclass(frozen=True)
class SourceSettings:
    """The target, absorber, beam, selection and importance-sampling knobs. Lengths in cm, energies in GeV.

    The geometry is SHiP's 2018 muon-background production (FairShip, ``geometry/geometry_config.py`` of
    2018 with ``muShieldDesign = 7`` and the 18-slice target, README.md in this folder gives the lines):
    58 cm of Mo in 13 slices then 78 cm of W in 5, with 17 water slits of 0.5 cm (144.5 cm in all), then
    the magnetised iron hadron absorber, 2 x (0.7 + 1.7) m = 4.8 m, and the sensitive plane at its exit.
    """

    beam_energy: float = 400.0
    target_front_z: float = -7084.5  # SHiP frame (FairShip z = -50 m at the target's front)
    # Blocks (material, length in cm, slice fraction: the rest of the block is water slits, taken as empty).
    layers: tuple[tuple[str, float, float], ...] = (
        ("molybdenum", 64.5, 58.0 / 64.5),
        ("tungsten", 80.0, 78.0 / 80.0),
        ("iron", 480.0, 1.0),
    )
    absorber_layers: int = 1  # the last this many layers form the hadron absorber (the rest: the target)
    # Sensitive plane at the absorber's exit (FairShip exitHadronAbsorber: a 7.12 m x 3.4 m box).
    exit_half_width: float = 356.0
    exit_half_height: float = 170.0
    # SHiP's selection: kinetic energy above this at the exit plane (run_fixedTarget.py -e 10).
    exit_kinetic_energy: float = 10.0
    # Beam spot painted on the primary interactions: none by default, as in SHiP's production; FairShip's
    # MuonBackGenerator paints its own (--SmearBeam 0.8 --PaintBeam 5). Set both to sample with one.
    beam_sigma: float = 0.0
    beam_paint_radius: float = 0.0
    # Particles with c*tau0 above this (mm) are left undecayed by Pythia: pi, K, K0L, K0S, hyperons.
    tau0_max_mm: float = 10.0
    # A hadron is collided only if its energy plus the struck nucleon's mass, less this margin, reaches
    # what a muon needs at the collision point to exit above the cut; GeV (see cascade.py).
    cascade_margin: float = 1.0
    # Collisions with little energy above that bound are made with probability spare / scale (at least
    # roulette_min) and weighted back (Russian roulette, unbiased): they rarely lead to a muon. A hadron's
    # weight is capped at 1 / roulette_min (its chance is raised), so every muon's weight stays below 1.
    roulette_scale: float = 10.0
    roulette_min: float = 0.05
    # Share of the cascade's collisions made again with light resonances forced into muon channels.
    cascade_resonance_fraction: float = 0.3
    max_generations: int = 30  # a safety bound: the energy threshold ends every cascade long before
    # Decays in flight sampled per pi, K, K0L (each muon gets 1/splits of the weight), as FairShip's
    # exitHadronAbsorber splits its pi/K decays.
    decay_splits: int = 2
    # Heavy-flavour pairs per inelastic interaction at 400 GeV (SHiP's normalisation).
    charm_fraction: float = 1.7e-3
    beauty_fraction: float = 1.6e-7
    # Events of each forced-decay run per proton on target: sets their muons' weights near the floor.
    resonance_events_per_pot: float = 0.5
    charm_events_per_pot: float = 0.25
    beauty_events_per_pot: float = 0.002
    # Weights below the floor are equalised without bias: kept with probability w/floor, set to floor.
    weight_floor: float = 1e-4
    # Tail biasing (muongan sample --bias tail, training/reference/biasing.py): off in the unbiased source.
    tail_biasing: bool = False
    tail_momentum: float = 100.0  # the region served: |p| above this (GeV/c) ...
    tail_pt: float = 3.0  # ... and pT above this (GeV/c), at production
    tail_primary_chance: float = 0.05  # primary products that cannot reach the region: followed this often
    tail_soft_chance: float = 0.1  # collisions that cannot feed the region are made this much less often
    tail_decay_splits: int = 60  # decays per pi, K, K0L that could make a muon of the region
    tail_charm_splits: int = 50  # decays per charm hadron of the forced runs that could make one
    tail_resonance_splits: int = 20  # decays per light resonance of the forced runs that could make one
    tail_resonance_fraction: float = 1.0  # share of collisions able to feed the region made again forced
    tail_forced_factor: float = 10.0  # events of the charm and beauty runs per POT, x this
    tail_resonance_factor: float = 10.0  # events of the forced-resonance run per POT, x this
    # Protons per task: the unit of seeding and of fresh Pythia instances (~10 s to initialise), so the
    # output depends on this, not on the number of workers.
    task_pot: int = 200_000

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)
