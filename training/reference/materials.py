"""The materials of the target and the hadron absorber: what a hadron and a muon see in each.

Values are the PDG's (Atomic and Nuclear Properties of Materials; Review of Particle Physics, "Passage
of particles through matter"), rounded; Mo's interaction length is the previous source's PDG-like
15.25 cm. Hadron interaction lengths are for high-energy inelastic hadron-nucleus collisions: the
proton's is the PDG nuclear interaction length; pions and kaons have
smaller cross-sections, taken as fixed ratios of it (1.18 and 1.34: the PDG's pion interaction length
of Fe, 20.4 cm against 16.8 cm, and the kaon-nucleon to pion-nucleon cross-section ratio at 20-200 GeV).

The muon's mean energy loss is the PDG's ``-dE/dx = a + b E`` with a and b held constant (the PDG's own
approximation for ranges): ``a`` the electronic stopping power on its relativistic-rise plateau, 1.2 x
the minimum ionisation, and ``b = a / E_muc`` with the PDG muon critical energy ``E_muc`` (the energy at
which radiative and electronic losses are equal: Fe 347 GeV from the PDG; Mo and W interpolated in Z
between the PDG's Cu, 315 GeV, and Pb, 141 GeV). This is the continuous-slowing-down approximation:
no straggling, no multiple scattering; a and b vary slowly with E, by about 10% over 10-300 GeV.

Photons see the radiation length X0 (PDG: Mo 9.80, W 6.76, Fe 13.84 g/cm2): at high energy they convert
into e+ e- after a mean free path of 9/7 X0 (the complete-screening Bethe-Heitler limit), which is what
a photon's chance of making a muon pair instead competes with (:mod:`training.reference.em_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

PION_TO_PROTON = 1.18
KAON_TO_PROTON = 1.34
AVOGADRO = 6.02214076e23  # 1/mol


@dataclass(frozen=True)
class Material:
    name: str
    density: float  # g/cm3
    protons: float  # Z: the chance that a struck nucleon is a proton is Z / A
    nucleons: float  # A, g/mol
    interaction_length: float  # cm, protons (and neutrons, antinucleons)
    min_ionisation: float  # MeV cm2/g
    muon_critical_energy: float  # GeV
    radiation_length: float  # cm

    @property
    def proton_fraction(self) -> float:
        return self.protons / self.nucleons

    @property
    def atoms(self) -> float:
        """Atoms per cm3."""
        return self.density * AVOGADRO / self.nucleons

    @property
    def ionisation(self) -> float:
        """``a`` of ``-dE/dx = a + b E`` in GeV/cm."""
        return 1.2 * self.min_ionisation * self.density * 1e-3

    @property
    def radiative(self) -> float:
        """``b`` of ``-dE/dx = a + b E`` in 1/cm."""
        return self.ionisation / self.muon_critical_energy

    def diluted(self, fraction: float) -> Material:
        """The same material spread over ``1 / fraction`` of its length (water slits between target slices),
        so that lengths, energy losses and interaction and conversion probabilities over the whole block
        stay right."""
        return Material(
            self.name,
            self.density * fraction,
            self.protons,
            self.nucleons,
            self.interaction_length / fraction,
            self.min_ionisation,
            self.muon_critical_energy,
            self.radiation_length / fraction,
        )


MATERIALS: dict[str, Material] = {
    "molybdenum": Material("molybdenum", 10.22, 42, 95.95, 15.25, 1.287, 250.0, 9.80 / 10.22),
    "tungsten": Material("tungsten", 19.30, 74, 183.84, 9.946, 1.145, 160.0, 6.76 / 19.30),
    "iron": Material("iron", 7.874, 26, 55.845, 16.77, 1.451, 347.0, 13.84 / 7.874),
}
