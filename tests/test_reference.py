"""The Pythia 8 reference source: the cascade, the absorber-exit selection, weights, reproducibility, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from muongan.cli import main
from service.contract.muons import validate
from service.samples import Sample, read_sample, write_sample
from training.reference import driver
from training.reference.cascade import Cascade, Hadrons
from training.reference.decays import LongLived, MuonChannel, decay_to_muons, long_lived_table
from training.reference.driver import Block, generate, run_task
from training.reference.events import KINDS, ORIGINS
from training.reference.geometry import MUON_MASS, Layout, fates, interaction_points, rotate_to, sample_distance
from training.reference.pythia_setup import CASCADE, SEEDS, Generator
from training.reference.settings import BLOCKS, SourceSettings

POT = 2000
SETTINGS = SourceSettings(task_pot=1000)  # two tasks: the merge of several seeded tasks is exercised
LAYOUT = Layout.from_settings(SETTINGS)
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample() -> Sample:
    return generate(POT, seed=7, settings=SETTINGS, progress=False)


@pytest.fixture(scope="module")
def first_task() -> Block:
    """The first task of ``sample`` on its own, with each muon's origin and generation."""
    return run_task(SETTINGS, 7, 0, SETTINGS.task_pot, progress=lambda n: None)


def test_a_task_alone_gives_the_same_muons_as_in_the_sample(sample: Sample, first_task: Block) -> None:
    assert np.array_equal(first_task.muons, sample.muons[: len(first_task.muons)])


def test_differs_across_seeds(first_task: Block) -> None:
    other = generate(SETTINGS.task_pot, seed=8, settings=SETTINGS, progress=False)
    n = min(len(other), len(first_task.muons))
    assert n > 0 and not np.array_equal(other.muons[:n], first_task.muons[:n])


def test_later_generations_exist_and_start_deeper(first_task: Block) -> None:
    """Muons whose parent came from the second or a later collision of the cascade are there, with a
    real share of the rate, and their production vertices lie deeper in the target, generation by generation."""
    muons = first_task.kept
    z = muons.position[:, 2] - SETTINGS.target_front_z
    share = {g: muons.weight[muons.generation == g].sum() / muons.weight.sum() for g in (1, 2, 3)}
    assert share[2] > 0.05 and share[3] > 0.005
    medians = [np.median(z[muons.generation == g]) for g in (1, 2, 3)]
    assert medians[0] < medians[1] < medians[2]
    assert np.any(muons.origin == ORIGINS.index("cascade"))


def test_cascade_products_and_muons_start_downstream_of_their_parent() -> None:
    """One step of the cascade on hand-made 200 GeV protons and pions: every product and every decay muon
    lies further along the parent's line of flight, and no weight grows."""
    generator = Generator(SETTINGS, np.arange(1, SEEDS + 1))
    rng = np.random.default_rng(3)
    pythia = generator.pythias[CASCADE, 2212]
    cascade = Cascade(generator, LAYOUT, long_lived_table(pythia), rng)
    n = 200
    direction = np.column_stack([np.full(n, 0.05), np.zeros(n), np.full(n, np.sqrt(1 - 0.05**2))])
    momentum = np.column_stack([200.0 * direction, np.full(n, 200.0)])
    start = np.array([0.0, 0.0, SETTINGS.target_front_z + 10.0])
    parents = Hadrons(
        pid=np.where(np.arange(n) % 2 == 0, 2212, 211),
        momentum=momentum,
        position=np.tile(start, (n, 1)),
        weight=np.full(n, 0.5),
        origin=np.zeros(n, dtype=np.int8),
        generation=np.ones(n, dtype=np.int8),
        bias=np.ones(n),
    )
    muons, children = cascade.step(parents)
    assert len(children.pid) > n and len(muons.pdg) > 0
    for position in (children.position, muons.position):
        travelled = position - start
        assert np.all(travelled[:, 2] > 0)
        assert np.allclose(travelled[:, 0], travelled[:, 2] * 0.05 / np.sqrt(1 - 0.05**2))  # on the line of flight
    assert np.all(children.generation == 2) and np.all(children.weight <= 0.5 / SETTINGS.roulette_min)
    assert np.all((muons.weight > 0) & (muons.weight < 0.5))
    # However many roulettes a line of hadrons survives, no hadron outweighs 1 / roulette_min, no muon 1.
    cap = 1 / SETTINGS.roulette_min
    heavy = replace(children, weight=children.weight * 0 + cap)
    muons, grandchildren = cascade.step(heavy)
    assert len(grandchildren.pid) > 0 and grandchildren.weight.max() <= cap * (1 + 1e-12)
    assert np.all((muons.weight > 0) & (muons.weight <= 1))


def test_muons_honour_the_contract_and_weights_lie_in_0_1(sample: Sample) -> None:
    muons = validate(sample.muons)
    assert len(muons) > 2000
    assert set(np.unique(muons[:, 0])) == {-13.0, 13.0}
    weight = muons[:, 7]
    assert np.all(weight > 0) and np.all(weight <= 1)
    assert weight.min() >= np.float32(SETTINGS.weight_floor)  # equalised: nothing below the floor survives
    muons_per_pot = float(sample.metadata["muons_per_pot"])
    assert muons_per_pot == pytest.approx(weight.astype(np.float64).sum() / POT, rel=1e-6)
    assert sample.metadata["pot"] == str(POT) and sample.metadata["seed"] == "7"


def _exit_energy_by_steps(position: np.ndarray, momentum: np.ndarray, step: float = 0.5) -> np.ndarray:
    """The muon's energy at the exit plane by small steps of dE/dx = a + b E: an independent check of
    the closed form the source uses."""
    energy = np.sqrt(np.sum(momentum**2, axis=1) + MUON_MASS**2)
    cos_z = momentum[:, 2] / np.linalg.norm(momentum, axis=1)
    z = position[:, 2].copy()
    while np.any(z < LAYOUT.exit_z):
        dz = np.minimum(step, LAYOUT.exit_z - z)
        material = [LAYOUT.materials[k] for k in LAYOUT.block(z + dz / 2)]
        a = np.array([m.ionisation for m in material])
        b = np.array([m.radiative for m in material])
        energy -= (a + b * energy) * dz / cos_z
        z += dz
    return energy


def test_every_muon_leaves_the_absorber_above_the_energy_cut(sample: Sample) -> None:
    muons = sample.muons.astype(np.float64)
    position, momentum = muons[:, 1:4], muons[:, 4:7]
    assert np.all(position[:, 2] >= SETTINGS.target_front_z - 1) and np.all(position[:, 2] < LAYOUT.exit_z)
    kinetic = _exit_energy_by_steps(position, momentum) - MUON_MASS
    assert kinetic.min() > SETTINGS.exit_kinetic_energy - 0.05  # float32 storage and step size
    assert np.all(LAYOUT.crosses_exit(position, momentum))
    # The selection is at the exit, not at production: a muon made near the front needs ~20 GeV.
    front = position[:, 2] < SETTINGS.target_front_z + 30
    assert np.linalg.norm(momentum[front], axis=1).min() > 17.0


def test_the_selection_rejects_what_stops_in_the_absorber() -> None:
    """A 15 GeV muon from the target's front stops in the iron; one of 40 GeV gets out with ~20 GeV."""
    position = np.tile([0.0, 0.0, SETTINGS.target_front_z + 1], (2, 1))
    momentum = np.array([[0.0, 0.0, 15.0], [0.0, 0.0, 40.0]])
    kinetic = LAYOUT.exit_energy(position, momentum) - MUON_MASS
    assert kinetic[0] < SETTINGS.exit_kinetic_energy < kinetic[1]
    assert kinetic[1] == pytest.approx(_exit_energy_by_steps(position, momentum)[1] - MUON_MASS, abs=0.01)
    assert 15 < kinetic[1] < 35


def test_metadata_records_origins_generations_and_settings(sample: Sample) -> None:
    fractions = json.loads(sample.metadata["source_fractions"])
    assert sum(fractions.values()) == pytest.approx(1.0)
    for key in fractions:
        origin, kind = key.split("/")
        assert origin in ORIGINS and kind in KINDS
    for key in ("primary/pi", "primary/K", "cascade/pi", "primary/resonance", "primary/charm", "primary/em_pair"):
        assert fractions[key] > 0
    assert 0.01 < fractions["primary/em_pair"] + fractions["cascade/em_pair"] < 0.1  # 3-4% of the rate
    assert "gamma -> mu mu" not in sample.metadata["missing_sources"]
    generations = json.loads(sample.metadata["generation_fractions"])
    assert sum(generations.values()) == pytest.approx(1.0) and generations["2"] > 0
    assert json.loads(sample.metadata["generator_settings"])["task_pot"] == SETTINGS.task_pot
    pythia = json.loads(sample.metadata["pythia_settings"])
    assert "Beams:allowVariableEnergy = on" in pythia["cascade/2212"]
    assert sample.metadata["beam_spot"].startswith("none")
    before = json.loads(sample.metadata["weights_before_equalising"])
    after = json.loads(sample.metadata["weights_after_equalising"])
    assert after["n"] == len(sample) < before["n"] and before["min"] < SETTINGS.weight_floor
    assert after["min"] == pytest.approx(SETTINGS.weight_floor) and after["max"] == pytest.approx(before["max"])


def test_the_metadata_records_each_batch_of_protons_in_file_order(
    sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks cover every row once, task after task; with small batches a task's cascade spans several,
    and each forced run's rows hold only muons of its kind (so the rows and the batches line up)."""
    blocks = json.loads(sample.metadata[BLOCKS])
    per_task = ["cascade", "resonance", "charm", "beauty"]
    assert blocks["run"] == per_task * (POT // SETTINGS.task_pot) and sum(blocks["rows"]) == len(sample)
    monkeypatch.setattr(driver, "_BATCH", 250)
    task = run_task(SETTINGS, 7, 0, SETTINGS.task_pot, progress=lambda n: None)
    assert task.batch_runs == ["cascade"] * 4 + ["resonance"] * 2 + ["charm"] + ["beauty"]
    assert task.batch_rows.sum() == len(task.muons) and np.all(task.batch_rows[:4] > 0)
    kinds = np.split(task.kept.kind, np.cumsum(task.batch_rows)[:-1])
    forced = {KINDS.index(run) for run in ("charm", "beauty")}
    assert all(not set(kind) & forced for kind in kinds[:4])
    for kind, run in zip(kinds[4:], task.batch_runs[4:], strict=True):
        assert set(kind) <= {KINDS.index(run)}


def test_competing_decay_and_interaction_in_one_block() -> None:
    """In iron alone: P(decay first) = d / (d + m) (1 - exp(-(d + m) L)), and the distances follow."""
    layout = Layout.from_settings(SourceSettings(layers=(("iron", 480.0, 1.0),), absorber_layers=1))
    n, decay = 100_000, 1 / 300.0
    interaction = 1 / (16.77 * 1.18)
    f = fates(layout, np.full(n, layout.edges[0]), np.ones(n), np.full(n, 211), np.full(n, decay))
    total = decay + interaction
    expected = decay / total * -np.expm1(-total * 480.0)
    assert f.decay == pytest.approx(np.full(n, expected))
    assert f.decay + f.interaction == pytest.approx(np.full(n, -np.expm1(-total * 480.0)))
    distance = sample_distance(f, f.decay_parts, np.random.default_rng(4))
    assert distance.mean() == pytest.approx(1 / total, rel=0.02)  # 480 cm is ~26 lengths: no truncation


def test_primary_interactions_are_on_axis_and_mostly_in_the_molybdenum() -> None:
    n = 100_000
    points = interaction_points(n, LAYOUT, SETTINGS, np.random.default_rng(1))
    assert np.all(points[:, :2] == 0)  # no beam spot: FairShip paints it
    in_mo = points[:, 2] < LAYOUT.edges[1]
    mo = LAYOUT.materials[0]
    assert in_mo.mean() == pytest.approx(-np.expm1(-64.5 / mo.interaction_length), abs=0.003)
    spotted = interaction_points(
        n, LAYOUT, SourceSettings(beam_sigma=0.8, beam_paint_radius=5.0), np.random.default_rng(1)
    )
    radius = np.hypot(spotted[:, 0], spotted[:, 1])  # FairShip paints a ring, smeared: r ~ 5 +- 0.8 cm
    assert np.mean(radius) == pytest.approx(5.0 + 0.8**2 / (2 * 5.0), abs=0.01)
    assert np.std(radius) == pytest.approx(0.8, rel=0.02) and np.mean(radius < 2.0) < 1e-3


def test_rotation_takes_the_beam_axis_onto_the_direction() -> None:
    rng = np.random.default_rng(5)
    direction = rng.normal(size=(1000, 3))
    direction[:, 2] = np.abs(direction[:, 2])
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    z_axis = np.tile([0.0, 0.0, 1.0], (1000, 1))
    assert np.allclose(rotate_to(z_axis, direction), direction)
    vectors = rng.normal(size=(1000, 3))
    assert np.allclose(np.linalg.norm(rotate_to(vectors, direction), axis=1), np.linalg.norm(vectors, axis=1))


def test_pion_decay_kinematics() -> None:
    m_pi, m_mu, ctau = 0.13957, 0.1056584, 780.45
    pion = LongLived(211, m_pi, ctau, (MuonChannel(1.0, -13, (0.0,)),))
    n, p = 100_000, 50.0
    momentum = np.tile([0.0, 0.0, p, np.hypot(p, m_pi)], (n, 1))
    pdg, muon, branching = decay_to_muons(momentum, np.full(n, -211), {211: pion}, np.random.default_rng(2))
    assert np.all(pdg == 13) and np.all(branching == 1.0)  # pi- -> mu-
    # Two-body decay: lab momentum spans [p m_mu^2/m_pi^2, p] (up to the masses), flat in between.
    assert muon[:, 2].min() == pytest.approx(p * m_mu**2 / m_pi**2, rel=0.01)
    assert muon[:, 2].max() == pytest.approx(p, rel=0.01)
    assert np.abs(muon[:, :2]).max() < 0.04  # pT below the rest-frame momentum, 29.8 MeV


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


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--out", "x.csv"], "cannot tell the format of 'x.csv'"),
        (["--out", "/proc/muongan/x.parquet"], "cannot make /proc/muongan"),  # a missing folder is made if it can be
        (["--out", "{tmp}/x.parquet", "--pot", "0"], "must be positive"),
    ],
)
def test_cli_refuses_mistakes_before_simulating(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line on stderr, exit status 2, no file and no Pythia: each is caught before the simulation."""
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    pot = [] if "--pot" in argv else ["--pot", "1000000"]
    assert main(["sample", "--seed", "1", *pot, *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and err.startswith("muongan sample: ")
    assert not list(tmp_path.iterdir())
