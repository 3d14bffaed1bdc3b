"""Pythia 8 instances for each run of the source, and the branching ratios of the channels they force.

Four kinds of run:

- ``cascade``: one SoftQCD inelastic instance whose beam hadron and energy change per collision
  (``Beams:allowVariableEnergy``, ``Beams:allowIDAswitch``; ``setBeamIDs(id, nucleon)`` and
  ``setKinematics(E, m_nucleon)`` in the fixed-target frame). It makes the minimum-bias interaction of
  each proton on target and every later hadron-nucleon collision of the cascade; only long-lived pi, K,
  K0L, nucleons and antinucleons are taken from it (decayed in flight or collided again).

The heavy-flavour runs collide 400 GeV protons only, on a proton and on a neutron (one instance each):

- ``resonance``: a second variable-beam SoftQCD instance, with the light resonances forced into their
  muon channels: for primary interactions and for a share of the cascade's collisions.
- ``charm`` / ``beauty``: HardQCD heavy-quark pairs with charm hadrons, tau and charmonium forced into
  muon channels, normalised afterwards to the per-interaction production fractions.

Beside them, two decays instances with no process level decay the hadrons handed to them with a forced
run's channels: one the heavy flavours', one the light resonances' (the tail-biased source decays a hadron
in reach of the shield region many times, :mod:`training.reference.biasing`).

A muon from a forced decay carries the product of the forced branching ratios of its ancestors, which
keeps the expected number of muons exact while every simulated event yields muons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import sqrt

import numpy as np
import pythia8mc

from training.reference.settings import SourceSettings

CASCADE = "cascade"
RESONANCE = "resonance"
VARIABLE: tuple[str, ...] = (CASCADE, RESONANCE)  # one instance each, any hadron beam at any energy
RUNS: tuple[str, ...] = ("charm", "beauty")  # fixed 400 GeV proton beam, one instance per nucleon
NUCLEONS: tuple[int, ...] = (2212, 2112)
MUON = 13
PROTON_MASS = 0.938272
NUCLEON_MASS = {2212: PROTON_MASS, 2112: 0.939565}
# Hadrons whose multiparton-interaction tables the variable-beam instances prepare (Pythia's default list
# of 22 takes 25 s to initialise, these 3 take 3 s); every beam the cascade uses is still accepted.
_BEAM_LIST = "{2212,211,311}"

LIGHT_RESONANCES = (221, 331, 113, 223, 333)  # eta, eta', rho0, omega, phi
CHARM_HADRONS = (411, 421, 431, 4122, 4132, 4232, 4332)
TAU = 15
CHARMONIA = (443, 100443)  # J/psi, psi(2S)

# Decays forced by each run kind: particle -> products of which a kept channel must contain one.
_HEAVY_FLAVOUR_FORCING: dict[int, tuple[int, ...]] = {
    **{pid: (MUON, TAU) for pid in CHARM_HADRONS},
    TAU: (MUON,),
    443: (MUON,),
    100443: (MUON, 443),
}
FORCING: dict[str, dict[int, tuple[int, ...]]] = {
    "resonance": {pid: (MUON,) for pid in LIGHT_RESONANCES},
    "charm": _HEAVY_FLAVOUR_FORCING,
    "beauty": _HEAVY_FLAVOUR_FORCING,
}
_VARIABLE_BEAM = (
    "SoftQCD:inelastic = on",
    "Beams:allowVariableEnergy = on",
    "Beams:allowIDAswitch = on",
    f"Beams:idAList = {_BEAM_LIST}",
)
_PROCESS: dict[str, tuple[str, ...]] = {
    CASCADE: _VARIABLE_BEAM,
    RESONANCE: _VARIABLE_BEAM,
    "charm": ("HardQCD:hardccbar = on", "PhaseSpace:pTHatMin = 0."),
    "beauty": ("HardQCD:hardbbbar = on", "PhaseSpace:pTHatMin = 0."),
}


def beam_energy(settings: SourceSettings) -> float:
    return sqrt(settings.beam_energy**2 + PROTON_MASS**2)


def pythia_settings(run: str, nucleon: int, settings: SourceSettings) -> list[str]:
    """The ``readString`` lines of one run on one target nucleon (recorded in the sample's metadata);
    ``Random:seed`` is added per task."""
    lines = [
        "Print:quiet = on",
        "Beams:frameType = 2",  # fixed target: beam A along +z, beam B at rest
        "Beams:idA = 2212",
        f"Beams:idB = {nucleon}",
        f"Beams:eA = {beam_energy(settings):.6f}",
        f"Beams:eB = {NUCLEON_MASS[nucleon] if run in VARIABLE else 0.0}",
        "ParticleDecays:limitTau0 = on",
        f"ParticleDecays:tau0Max = {settings.tau0_max_mm}",
        "Random:setSeed = on",
        *_PROCESS[run],
    ]
    for pid, products in FORCING.get(run, {}).items():
        lines += [f"{pid}:onMode = off", f"{pid}:onIfAny = {' '.join(map(str, products))}"]
    return lines


def forced_fraction(pythia: pythia8mc.Pythia, pid: int) -> float:
    """Sum of the branching ratios of the channels still open for ``pid`` (1 when nothing is forced)."""
    entry = pythia.particleData.particleDataEntryPtr(pid)
    channels = [entry.channel(i) for i in range(entry.sizeChannels())]
    total = sum(channel.bRatio() for channel in channels)
    return sum(channel.bRatio() for channel in channels if channel.onMode() > 0) / total


INSTANCES: tuple[tuple[str, int], ...] = (
    *((run, NUCLEONS[0]) for run in VARIABLE),
    *((run, n) for run in RUNS for n in NUCLEONS),
)
# The decays instances, one per forcing, and the forced runs whose hadrons each decays again.
DECAYERS: dict[str, tuple[str, ...]] = {"heavy flavour": ("charm", "beauty"), "light resonances": (RESONANCE,)}
SEEDS = len(INSTANCES) + len(DECAYERS)  # one per instance, then the decays instances'


def decays_settings(run: str, settings: SourceSettings) -> list[str]:
    """The ``readString`` lines of the decays instance for ``run``: hadron level only, that run's forcing."""
    lines = [
        "Print:quiet = on",
        "ProcessLevel:all = off",
        "ParticleDecays:limitTau0 = on",
        f"ParticleDecays:tau0Max = {settings.tau0_max_mm}",
        "Random:setSeed = on",
    ]
    for pid, products in FORCING[run].items():
        lines += [f"{pid}:onMode = off", f"{pid}:onIfAny = {' '.join(map(str, products))}"]
    return lines


def _initialised(lines: list[str], what: str) -> pythia8mc.Pythia:
    pythia = pythia8mc.Pythia("", False)
    for line in lines:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise {what}")
    return pythia


@dataclass
class Generator:
    """Freshly initialised Pythia instances keyed by (run, nucleon) in the order of ``INSTANCES``, seeded
    in that order, the decays instances (``DECAYERS``) seeded after them and keyed by the forced runs they
    serve, and the forced fractions of each run; a variable-beam instance is keyed (run, 2212).

    Built anew for every task: an instance carries state from one event batch to the next that reseeding
    does not clear (seen as rare 1e-4 shifts of parton momenta in pn events), so reusing instances across
    tasks would make a task's muons depend on which tasks its worker ran before.
    """

    settings: SourceSettings
    seeds: np.ndarray  # ``SEEDS`` of them, 1..900,000,000
    pythias: dict[tuple[str, int], pythia8mc.Pythia] = field(default_factory=dict)
    branching: dict[str, dict[int, float]] = field(default_factory=dict)
    decays: dict[str, pythia8mc.Pythia] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seeds = self.seeds.tolist()
        if len(seeds) != SEEDS:
            raise ValueError(f"{SEEDS} seeds needed, got {len(seeds)}")
        for (run, nucleon), seed in zip(INSTANCES, seeds, strict=False):
            lines = [*pythia_settings(run, nucleon, self.settings), f"Random:seed = {seed}"]
            pythia = _initialised(lines, f"the {run} run on {nucleon}")
            self.pythias[run, nucleon] = pythia
            self.branching[run] = {pid: forced_fraction(pythia, pid) for pid in FORCING.get(run, {})}
        for (name, runs), seed in zip(DECAYERS.items(), seeds[len(INSTANCES) :], strict=True):
            decays = _initialised([*decays_settings(runs[0], self.settings), f"Random:seed = {seed}"], name)
            self.decays |= dict.fromkeys(runs, decays)

    def pythia(self, run: str, nucleon: int) -> pythia8mc.Pythia:
        """The instance for ``run`` on ``nucleon``; a variable-beam one is set to a 400 GeV proton on it."""
        if run not in VARIABLE:
            return self.pythias[run, nucleon]
        pythia = self.pythias[run, NUCLEONS[0]]
        pythia.setBeamIDs(2212, nucleon)
        pythia.setKinematics(beam_energy(self.settings), NUCLEON_MASS[nucleon])
        return pythia
