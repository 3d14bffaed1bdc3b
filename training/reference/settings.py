"""Every physical and numerical choice of the reference source, in one frozen record saved with the sample.

Keeping them together means a sample file says exactly what made it (``generator_settings`` metadata),
and a test or a study can change one number without touching code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SourceSettings:
    """The target, beam, cuts and importance-sampling knobs. Lengths in cm, momenta in GeV/c."""

    beam_energy: float = 400.0
    # Molybdenum: Z protons out of A nucleons; Pythia collides the beam with single nucleons at rest.
    target_protons: int = 42
    target_nucleons: float = 95.95
    target_front_z: float = -7084.5  # SHiP frame
    target_length: float = 140.0  # ~9 proton interaction lengths: nearly every proton interacts
    # Nuclear interaction lengths in Mo-like material (PDG-like values; mesons have smaller cross-sections).
    lambda_proton: float = 15.3
    lambda_pion: float = 18.0
    lambda_kaon: float = 20.5
    # Beam spot as in FairShip: Gaussian smearing plus uniform painting of a disc.
    beam_sigma: float = 0.8
    beam_paint_radius: float = 5.0
    p_min: float = 10.0
    # Particles with c*tau0 above this (mm) are left undecayed by Pythia: pi, K, K0L, K0S, hyperons.
    tau0_max_mm: float = 10.0
    # Heavy-flavour pairs per inelastic interaction at 400 GeV (SHiP's normalisation).
    charm_fraction: float = 1.7e-3
    beauty_fraction: float = 1.6e-7
    # Events of each forced-decay run per proton on target: sets their muons' weights near the floor.
    resonance_events_per_pot: float = 0.5
    charm_events_per_pot: float = 0.25
    beauty_events_per_pot: float = 0.002
    # Weights below the floor are equalised without bias: kept with probability w/floor, set to floor.
    weight_floor: float = 3e-4
    # Protons per task: the unit of seeding and of fresh Pythia instances (~8 s to initialise), so the
    # output depends on this, not on the number of workers.
    task_pot: int = 100_000

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)
