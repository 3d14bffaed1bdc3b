"""Forced hadrons decayed again many times (the tail-biased source's split charm and light-resonance decays):
every muon comes from its own hadron, after a flight drawn from its lifetime, and on real charm and
forced-resonance events the split decays give what Pythia's own decays give, in weighted rate and kinematics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.reference.biasing import Biasing
from training.reference.driver import _forced_muons, _primaries
from training.reference.events import Muons, descends_from, forced_weight
from training.reference.geometry import Layout
from training.reference.pythia_setup import FORCING, RESONANCE, SEEDS, Generator, forced_fraction
from training.reference.redecay import redecay
from training.reference.settings import SourceSettings

SETTINGS = SourceSettings()
D_PLUS, D_PLUS_MASS, D_PLUS_CTAU_MM = 411, 1.86966, 0.3118


@pytest.fixture(scope="module")
def generator() -> Generator:
    return Generator(SETTINGS, np.arange(1, SEEDS + 1))


def test_each_muon_comes_from_its_own_hadron_after_its_flight(generator: Generator) -> None:
    """200 GeV D+ in 8 directions 0.2 rad apart, each decayed 400 times: every muon flies within the
    widest angle a D+ decay allows of its own hadron (never nearer another), weighs the forced fractions
    of its chain over the splits, and (one of the D+ itself) starts where the hadron decayed, on its line
    of flight, a mean gamma beta c tau downstream."""
    n, splits, energy = 8, 400, 200.0
    angle = 0.2 * np.arange(n)
    p = np.sqrt(energy**2 - D_PLUS_MASS**2)
    momentum = np.column_stack([p * np.sin(angle), np.zeros(n), p * np.cos(angle), np.full(n, energy)])
    muons = redecay(
        generator.decays["charm"],
        generator.branching["charm"],
        np.full(n, D_PLUS),
        momentum,
        splits,
        np.random.default_rng(1),
    )

    direction = momentum[muons.hadron, :3] / p
    cosine = np.sum(muons.momentum * direction, axis=1) / np.linalg.norm(muons.momentum, axis=1)
    assert np.all(np.bincount(muons.hadron, minlength=n) > 0.5 * splits)
    assert np.all(np.abs(muons.pdg) == 13)
    # beta gamma ~ 107: a muon (rest-frame momentum < 0.93 GeV/c) leaves its D+ at under 0.93 / (m_mu 107) rad
    assert np.all(cosine > np.cos(0.09))
    forced = generator.branching["charm"]
    direct, via_tau = forced[D_PLUS] / splits, forced[D_PLUS] * forced[15] / splits  # D+ -> mu or tau -> mu
    assert np.all(np.isclose(muons.weight, direct) | np.isclose(muons.weight, via_tau))
    assert np.mean(np.isclose(muons.weight, direct)) > 0.5

    first = np.isclose(muons.weight, direct)  # muons of the D+ itself, not of a tau on its own flight
    offset, direction = muons.offset[first], direction[first]
    along = np.sum(offset * direction, axis=1)
    across = np.linalg.norm(offset - along[:, None] * direction, axis=1)
    assert np.all(across < 1e-6 * np.maximum(along, 1e-3) + 1e-9)
    expected = p / D_PLUS_MASS * D_PLUS_CTAU_MM * 0.1  # cm
    assert abs(along.mean() / expected - 1) < 4 / np.sqrt(len(along))  # exponential: sd = mean


def test_no_hadron_no_call(generator: Generator) -> None:
    muons = redecay(
        generator.decays["charm"],
        generator.branching["charm"],
        np.empty(0, int),
        np.empty((0, 4)),
        10,
        np.random.default_rng(1),
    )
    assert len(muons.weight) == len(muons.hadron) == len(muons.momentum) == 0


@pytest.mark.parametrize("run", ["charm", "beauty", RESONANCE])
def test_the_decays_instances_force_what_their_runs_force(generator: Generator, run: str) -> None:
    """The split decays are weighted with the run's forced fractions: the decays instance must open the same
    channels."""
    decays = generator.decays[run]
    assert {pid: forced_fraction(decays, pid) for pid in FORCING[run]} == generator.branching[run]


def _own_and_split(generator: Generator, run: str, settings: SourceSettings, events: int) -> tuple[Muons, Muons]:
    """The muons of the same events of a forced run, from Pythia's own decays and from split ones
    (``settings``), those of hadrons in reach only."""
    layout, rng = Layout.from_settings(SETTINGS), np.random.default_rng(5)
    own, split = [], []
    biasing = Biasing(settings)
    split_bias = 1 / biasing.forced_factor(run) / biasing.forced_splits(run)
    for particles, origin, _ in _primaries(generator, run, events, layout, rng):
        plain = _forced_muons(particles, origin, generator, run, 1.0, Biasing(SETTINGS), rng)
        muon_rows = np.flatnonzero((particles.status > 0) & (np.abs(particles.pid) == 13))
        reach = biasing.split_in_reach(run, particles.pid, particles.momentum) & (particles.status < 0)
        forced = forced_weight(particles, muon_rows, generator.branching[run]) > 0
        own.append(plain.take(np.flatnonzero(descends_from(particles, muon_rows[forced], reach))))
        again = _forced_muons(particles, origin, generator, run, 1.0, biasing, rng)
        split.append(again.take(np.flatnonzero(np.isclose(again.bias, split_bias))))
    return Muons.concatenate(own), Muons.concatenate(split)


@pytest.mark.parametrize(("run", "events"), [("charm", 20_000), (RESONANCE, 20_000)])
def test_split_decays_agree_with_pythias_own(generator: Generator, run: str, events: int) -> None:
    """Events of a forced run with the region lowered to |p| > 20, pT > 1 GeV/c (so that many hadrons are
    in reach): the muons of the hadrons in reach, from Pythia's decays in the event and from 20 split decays
    of the same hadrons, agree in weighted number, mean |p| and mean pT within 4 standard errors; the split
    ones are over 10 times as many. (Where each starts is the first test's.)"""
    settings = replace(
        SETTINGS, tail_biasing=True, tail_momentum=20.0, tail_pt=1.0, tail_charm_splits=20, tail_resonance_splits=20
    )
    own, split = _own_and_split(generator, run, settings, events)
    assert len(own.weight) > 200
    assert len(split.weight) > 10 * len(own.weight)

    ratio = split.weight.sum() / own.weight.sum()
    error = np.sqrt(np.sum(own.weight**2)) / own.weight.sum()  # the split side's is far smaller
    assert abs(ratio - 1) < 4 * error

    def means(m: Muons) -> dict[str, tuple[float, float]]:
        columns = {"p": np.linalg.norm(m.momentum, axis=1), "pT": np.hypot(m.momentum[:, 0], m.momentum[:, 1])}
        return {
            k: (float(np.average(v, weights=m.weight)), float(v.std() / np.sqrt(len(v)))) for k, v in columns.items()
        }

    a, b = means(own), means(split)
    for key in a:
        assert abs(a[key][0] - b[key][0]) < 4 * np.hypot(a[key][1], b[key][1]), (key, a[key], b[key])
