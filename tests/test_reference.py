"""The Pythia 8 reference source: reproducibility, the data contract, cuts, geometry and decay kinematics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.contract.muons import validate
from service.samples import Sample, read_sample, write_sample
from training.reference.decays import LongLived, MuonChannel, decay_in_flight
from training.reference.driver import SOURCES, generate
from training.reference.geometry import interaction_points
from training.reference.settings import SourceSettings

POT = 2000
SETTINGS = SourceSettings(task_pot=1000)  # two tasks: the merge of several seeded tasks is exercised
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample() -> Sample:
    return generate(POT, seed=7, settings=SETTINGS, progress=False)


def test_differs_across_seeds(sample: Sample) -> None:
    other = generate(SETTINGS.task_pot, seed=8, settings=SETTINGS, progress=False)
    assert len(other) > 0
    first_task = sample.muons[: len(other)]
    assert not np.array_equal(other.muons[: len(first_task)], first_task)


def test_muons_honour_the_contract_and_cuts(sample: Sample) -> None:
    muons = validate(sample.muons)
    assert len(muons) > 1000
    assert set(np.unique(muons[:, 0])) == {-13.0, 13.0}
    assert np.all(np.linalg.norm(muons[:, 4:7], axis=1) > SETTINGS.p_min)
    weight = muons[:, 7]
    assert np.all(weight > 0) and np.all(weight <= 1)
    assert weight.min() >= np.float32(SETTINGS.weight_floor)  # equalised: nothing below the floor survives
    muons_per_pot = float(sample.metadata["muons_per_pot"])
    assert muons_per_pot > 0
    assert muons_per_pot == pytest.approx(weight.astype(np.float64).sum() / POT, rel=1e-6)
    assert sample.metadata["pot"] == str(POT) and sample.metadata["seed"] == "7"


def test_muons_start_in_the_target_or_behind_its_front(sample: Sample) -> None:
    z = sample.muons[:, 3]
    front = SETTINGS.target_front_z
    assert z.min() >= front
    # Production vertices lie in the target; decays in flight happen within a few interaction lengths.
    assert z.max() <= front + SETTINGS.target_length + 20 * SETTINGS.lambda_kaon
    assert np.median(z) < front + 3 * SETTINGS.lambda_pion


def test_metadata_records_sources_and_settings(sample: Sample) -> None:
    fractions = json.loads(sample.metadata["source_fractions"])
    assert set(fractions) == set(SOURCES)
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions["pi"] > 0 and fractions["charm"] > 0 and fractions["resonance"] > 0
    assert json.loads(sample.metadata["generator_settings"])["task_pot"] == SETTINGS.task_pot
    assert "SoftQCD:inelastic = on" in json.loads(sample.metadata["pythia_settings"])["soft/2212"]


def test_interaction_points_follow_the_beam_and_the_proton_interaction_length() -> None:
    points = interaction_points(200_000, SETTINGS, np.random.default_rng(1))
    depth = points[:, 2] - SETTINGS.target_front_z
    assert depth.min() >= 0 and depth.max() <= SETTINGS.target_length
    assert depth.mean() == pytest.approx(SETTINGS.lambda_proton, rel=0.02)  # truncation at ~9 lengths is negligible
    radius = np.hypot(points[:, 0], points[:, 1])
    assert np.percentile(radius, 50) == pytest.approx(SETTINGS.beam_paint_radius / np.sqrt(2), rel=0.1)


def test_pion_decay_in_flight_weight_distance_and_kinematics() -> None:
    m_pi, m_mu, ctau, lam = 0.13957, 0.1056584, 780.45, 18.0
    pion = LongLived(211, m_pi, ctau, lam, (MuonChannel(1.0, -13, (0.0,)),))
    n, p = 100_000, 50.0
    momentum = np.tile([0.0, 0.0, p, np.hypot(p, m_pi)], (n, 1))
    out = decay_in_flight(momentum, np.full(n, -211), {211: pion}, np.random.default_rng(2))
    decay_length = p / m_pi * ctau
    assert np.allclose(out.weight, lam / (decay_length + lam))
    assert out.distance.mean() == pytest.approx(1 / (1 / decay_length + 1 / lam), rel=0.02)
    assert np.all(out.pdg == 13)  # pi- -> mu-
    # Two-body decay: lab momentum spans [p m_mu^2/m_pi^2, p] (up to the masses), flat in between.
    lab = out.momentum[:, 2]
    assert lab.min() == pytest.approx(p * m_mu**2 / m_pi**2, rel=0.01)
    assert lab.max() == pytest.approx(p, rel=0.01)
    assert np.abs(out.momentum[:, :2]).max() < 0.04  # pT below the rest-frame momentum, 29.8 MeV


def test_cli_reproduces_the_bytes_with_any_number_of_workers(sample: Sample, tmp_path: Path) -> None:
    """Same seed and POT give the same file from a fresh process with two workers as in-process with one."""
    out = tmp_path / "cli.parquet"
    command = [VENV_BIN / "muongan", "sample", "--pot", str(POT), "--seed", "7", "--out", out]
    command += ["--workers", "2", "--task-pot", str(SETTINGS.task_pot)]
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "POT" in result.stderr  # progress and the summary go to stderr
    in_process = tmp_path / "in_process.parquet"
    write_sample(sample, in_process)
    assert out.read_bytes() == in_process.read_bytes()
    assert np.array_equal(read_sample(out).muons, sample.muons)
