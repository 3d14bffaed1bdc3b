"""A FairShip production as users hold it: many ROOT files of both layouts, non-muon rows, no metadata.

Read as FairShip reads it, described by ``muongan describe``, trained with ``--pot``, and every mistake
a user can make with such a set refused with one line on stderr, status 2 and nothing in ``--out``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from conftest import TINY_CONFIG
from test_samples import make_muons

from muongan.cli import main
from service.contract.manifest import Manifest
from service.contract.muons import SampleError
from service.samples import Sample, read_sample, write_sample
from service.samples.root import TREE, fairship_branches
from service.samples.sets import chunks, expand
from service.samples.survey import Reservoir, reservoir_key, row_hash, survey
from training.preparation.batches import Batches

N_PER_FILE = 1500
NON_MUONS = {22: 7, 211: 3, 2112: 2}  # photons, pi+, neutrons in each file: skipped as FairShip skips them


def fairship_file(path: Path, muons: np.ndarray, origin: bool, dtype: type = np.float32) -> None:
    """A FairShip tree of ``muons`` (canonical cm frame): 11 leaves, or 17 with the origin in ``ox..opz``
    (then the plain names hold a downstream plane, here all 7.0, which the reader must not use)."""
    branches = fairship_branches(muons)
    row = 0
    for pdg, count in NON_MUONS.items():
        branches["id"][row : row + count] = pdg
        row += count
    if origin:
        plane = {name: np.full_like(branches[name], 7.0) for name in ("x", "y", "z", "px", "py", "pz")}
        plane["z"][-1] = plane["x"][-1] = plane["y"][-1] = 0.0  # the buffer row stays all zero
        plane["px"][-1] = plane["py"][-1] = plane["pz"][-1] = 0.0
        origins = {"o" + name: branches[name] for name in ("x", "y", "z", "px", "py", "pz")}
        branches = {**branches, **plane, **origins}
    with uproot.recreate(path) as file:
        file.mktree(TREE, {name: dtype for name in branches}).extend({k: v.astype(dtype) for k, v in branches.items()})


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Four files in a folder: two 11-leaf (float32, float64) and two 17-leaf; and the muons they hold."""
    folder = tmp_path_factory.mktemp("production")
    muons = make_muons(4 * N_PER_FILE, seed=3)
    for i, (origin, dtype) in enumerate(
        [(False, np.float32), (True, np.float32), (False, np.float64), (True, np.float64)]
    ):
        part = muons[i * N_PER_FILE : (i + 1) * N_PER_FILE]
        fairship_file(folder / f"pythia8_Geant4_{i}_mu.root", part, origin, dtype)
    skipped = sum(NON_MUONS.values())
    kept = np.concatenate([muons[i * N_PER_FILE + skipped : (i + 1) * N_PER_FILE] for i in range(4)])
    return folder, kept


def test_fairship_layouts_are_read_as_fairship_reads_them(production: tuple[Path, np.ndarray]) -> None:
    folder, expected = production
    files = expand([folder])
    assert [f.name for f in files] == [f"pythia8_Geant4_{i}_mu.root" for i in range(4)]
    read = np.concatenate([chunk.muons for path in files for chunk in chunks(path, rows=500)])
    np.testing.assert_allclose(read, expected, rtol=1e-6, atol=1e-4)  # metres -> cm rounding of float32
    assert np.all(read[:, 3] < -6000)  # the origin, not the downstream plane at 7 m
    whole = read_sample(files[1])  # the upload path reads the same way
    assert len(whole) == N_PER_FILE - sum(NON_MUONS.values())


def test_describe_json_of_a_production(production: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]) -> None:
    folder, expected = production
    assert main(["describe", str(folder / "*_mu.root"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [f["layout"] for f in result["files"]] == ["fairship-11", "fairship-17+", "fairship-11", "fairship-17+"]
    assert result["muons"] == len(expected)
    assert result["skipped_rows"] == {str(pdg): 4 * count for pdg, count in NON_MUONS.items()}
    assert result["sum_weights"] == pytest.approx(expected[:, -1].astype(np.float64).sum(), rel=1e-6)
    assert result["muons_per_pot"] is None and result["pot"] is None
    assert result["mu_plus_fraction"] == pytest.approx(
        expected[expected[:, 0] < 0, -1].sum() / expected[:, -1].sum(), rel=1e-5
    )
    z = result["columns"]["z"]
    assert z["min"] == pytest.approx(expected[:, 3].min(), abs=1e-3) and z["max"] == pytest.approx(expected[:, 3].max())
    assert z["min"] <= z["q0.001"] <= z["q0.5"] <= z["q0.999"] <= z["max"]
    weighted_median = np.quantile(expected[:, 3], 0.5, weights=expected[:, -1].astype(float), method="inverted_cdf")
    assert z["q0.5"] == pytest.approx(weighted_median, abs=1e-3)  # the whole set fits the subsample: exact


def test_subsample_and_split_do_not_depend_on_file_order_or_boundaries(tmp_path: Path) -> None:
    muons = make_muons(6000, seed=4)
    write_sample(Sample(muons[:4000]), tmp_path / "a.parquet")
    write_sample(Sample(muons[4000:]), tmp_path / "b.npy")
    write_sample(Sample(muons[::-1].copy()), tmp_path / "whole.arrow")
    two = survey(expand([tmp_path / "b.npy", tmp_path / "a.parquet"]), seed=1, capacity=1000, progress=False)
    one = survey(expand([tmp_path / "whole.arrow"]), seed=1, capacity=1000, progress=False)
    np.testing.assert_array_equal(two.reservoir.in_key_order()[0], one.reservoir.in_key_order()[0])
    keys = reservoir_key(row_hash(muons, 1))
    np.testing.assert_array_equal(np.sort(two.reservoir.keys), np.sort(keys)[:1000])  # the smallest keys
    assert row_hash(muons, 1)[0] != row_hash(muons, 2)[0]  # seeded


def test_reservoir_keeps_the_smallest_keys() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    rows = np.repeat(np.arange(5000, dtype=np.float32)[:, None], 8, axis=1)
    reservoir = Reservoir(100)
    for start in range(0, 5000, 700):
        reservoir.add(rows[start : start + 700], keys[start : start + 700])
    kept, kept_keys = reservoir.in_key_order()
    np.testing.assert_array_equal(kept_keys, np.sort(keys)[:100])
    np.testing.assert_array_equal(kept[:, 0], np.argsort(keys)[:100])


def test_weighted_batches_follow_the_weights_and_replay_by_step(tmp_path: Path) -> None:
    """Rows of weight 1, 2, 3, 4 (1,000 each) are drawn 1:2:3:4; the same step draws the same rows."""
    n = 4000
    rows = np.repeat(np.arange(n, dtype=np.float32)[:, None], 13, axis=1)
    weights = np.repeat([1.0, 2.0, 3.0, 4.0], n // 4)
    np.save(tmp_path / "rows.npy", rows)
    np.save(tmp_path / "cdf.npy", np.cumsum(weights))
    batches = Batches(tmp_path, seed=3, batch_size=1000)
    drawn = np.concatenate([batches.draw(0, step, 2)[..., 0].ravel() for step in range(20)]).astype(int)
    counts = np.bincount(drawn // (n // 4), minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.01)
    np.testing.assert_array_equal(batches.draw(0, 5, 2), batches.draw(0, 5, 2))
    assert not np.array_equal(batches.draw(0, 5, 2), batches.draw(1, 5, 2))
    exact = np.searchsorted(np.cumsum(weights), u := np.random.default_rng(1).random(5000) * weights.sum(), "right")
    np.testing.assert_array_equal(batches.indices(u), exact)
    assert list(batches.ahead(0, 3, 6, 2))[1].tolist() == batches.draw(0, 4, 2).tolist()
    many = np.random.default_rng([3, 2, 7]).random(70_000) * weights.sum()  # looked up in two parts
    np.testing.assert_array_equal(
        batches.draw(2, 7, 70)[..., 0].ravel(), np.searchsorted(np.cumsum(weights), many, "right")
    )


def _train(tmp_path: Path, *paths: str | Path, extra: tuple[str, ...] = ()) -> list[str]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "steps": 10, "eval_every": 10, "aux_head_steps": 20}))
    argv = ["train", "--sample", *map(str, paths), "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "w")]
    return [*argv, "--config", str(config), "--no-report", *extra]


def test_a_production_trains_with_pot(production: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    folder, expected = production
    assert main(_train(tmp_path, folder, extra=("--pot", "6.5e4"))) == 0
    manifest = Manifest.load(tmp_path / "out")
    sample = manifest.training_sample
    assert sample["muons"] == len(expected) and sample["pot"] == 6.5e4 and sample["pot_source"] == "--pot"
    assert sample["skipped_rows"] == {str(pdg): 4 * count for pdg, count in NON_MUONS.items()}
    assert [f["layout"] for f in sample["files"]][:2] == ["fairship-11", "fairship-17+"]
    assert all(len(f["sha256"]) == 64 for f in sample["files"])
    assert sample["training_muons"] + sample["holdout_muons"] == len(expected)
    assert manifest.muons_per_pot == pytest.approx(expected[:, -1].astype(np.float64).sum() / 6.5e4, rel=1e-6)


def test_pot_from_metadata_summed_over_files_and_checked_against_pot(tmp_path: Path) -> None:
    """Two of our files of 1e3 and 3e3 POT: the set stands for 4e3; --pot 4e3 agrees, 5e3 contradicts."""
    muons = make_muons(3000, seed=5)
    for name, part, pot in (("a.parquet", muons[:1000], 1e3), ("b.parquet", muons[1000:], 3e3)):
        per_pot = part[:, -1].astype(np.float64).sum() / pot
        write_sample(Sample(part, {"muons_per_pot": repr(per_pot)}), tmp_path / name)
    assert main(_train(tmp_path, tmp_path / "*.parquet", extra=("--pot", "4e3"))) == 0
    sample = Manifest.load(tmp_path / "out").training_sample
    assert sample["pot"] == 4e3


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], out: Path, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written in --out


def test_user_errors_are_one_line_and_status_2(
    production: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = production
    out = tmp_path / "out"
    _refused(_train(tmp_path, folder), capsys, out, "pass --pot")
    ours = tmp_path / "ours"
    ours.mkdir()
    muons = make_muons(1000, seed=6)
    write_sample(Sample(muons, {"muons_per_pot": "0.5"}), ours / "ours.parquet")
    _refused(_train(tmp_path, ours, extra=("--pot", "9e9")), capsys, out, "contradicts the files' metadata")
    _refused(_train(tmp_path, ours, folder, extra=("--pot", "1e4")), capsys, out, "carry no 'muons_per_pot'")
    with uproot.recreate(tmp_path / "other.root") as file:
        file.mktree("events", {"a": np.float32}).extend({"a": np.zeros(3, np.float32)})
    _refused(_train(tmp_path, tmp_path / "other.root", extra=("--pot", "1")), capsys, out, "other.root")
    damaged = tmp_path / "damaged.root"
    data = (folder / "pythia8_Geant4_0_mu.root").read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    _refused(_train(tmp_path, damaged, extra=("--pot", "1")), capsys, out, "damaged.root")
    (tmp_path / "empty").mkdir()
    _refused(_train(tmp_path, tmp_path / "empty", extra=("--pot", "1")), capsys, out, "holds no sample file")
    _refused(_train(tmp_path, tmp_path / "none*.root", extra=("--pot", "1")), capsys, out, "matches no file")
    _refused(["describe", str(tmp_path / "none*.root")], capsys, out, "matches no file")
    _refused(_train(tmp_path, folder, extra=("--pot", "-3")), capsys, out, "--pot must be a positive")


def test_missing_or_damaged_branch_is_named(tmp_path: Path) -> None:
    branches = fairship_branches(make_muons(20000))
    with uproot.recreate(tmp_path / "good.root") as file:
        file.mktree(TREE, {name: np.float32 for name in branches}).extend(branches)
    with uproot.open(tmp_path / "good.root") as file:
        seek = int(file[TREE]["px"].member("fBasketSeek")[0])
    data = bytearray((tmp_path / "good.root").read_bytes())
    data[seek + 40 : seek + 400] = b"U" * 360  # the compressed bytes of px's first basket
    (tmp_path / "bad.root").write_bytes(bytes(data))
    with pytest.raises(SampleError, match=r"bad\.root: cannot read branch 'px'") as caught:
        list(chunks(tmp_path / "bad.root"))
    assert "\n" not in str(caught.value)
    del branches["py"]
    with uproot.recreate(tmp_path / "nopy.root") as file:
        file.mktree(TREE, {name: np.float32 for name in branches}).extend(branches)
    with pytest.raises(SampleError, match=r"nopy\.root: .*lacks branch\(es\) py"):
        list(chunks(tmp_path / "nopy.root"))


def test_evaluate_and_plot_take_a_set(
    tiny_model: Path, tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate --reference`` and ``plot --sample`` read sets the way ``train`` does."""
    import shutil

    sample = read_sample(tiny_sample)
    halves = tmp_path / "reference"
    halves.mkdir()
    half = len(sample) // 2
    write_sample(Sample(sample.muons[:half], sample.metadata), halves / "a.parquet")
    write_sample(Sample(sample.muons[half:], sample.metadata), halves / "b.npy")
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    argv = ["evaluate", "--model", str(model), "--reference", str(halves / "a.parquet"), str(halves / "b.npy")]
    assert (
        main(
            [
                *argv,
                "--n",
                "2000",
                "--seeds",
                "1",
                "--n-boosted",
                "1000",
                "--n-joint",
                "5000",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["reference"]["path"] == "a.parquet ... b.npy (2 files)"
    assert evaluation["reference"]["n"] == len(sample)
    assert evaluation["n_per_side"] == 2000  # a random 2,000 of the two files' muons
    # Each half carries the whole sample's record of its batches: no shower errors, and the reason why.
    assert (
        evaluation["tail_shower_errors"].startswith("not taken: ")
        and "independent_blocks" in evaluation["tail_shower_errors"]
    )
    assert evaluation["joint_tail"]["reference"]["error_from"].startswith("weighted Poisson: ")
    assert "independent_blocks" in evaluation["joint_tail"]["reference"]["error_from"]
    assert main(["plot", "--sample", str(halves), "--kind", "p_pt", "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")
    assert main(["plot", "--sample", str(tmp_path / "nothing*.npy"), "--out", str(tmp_path / "q")]) == 2
    assert "matches no file" in capsys.readouterr().err
