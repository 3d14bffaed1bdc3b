"""``muongan generate`` end to end in subprocesses: in-process and from a real server, every format, shards.

Files are read back with their own libraries (numpy, pyarrow, uproot).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import uproot

from service.contract.manifest import Manifest
from service.contract.muons import COLUMNS
from service.samples import read_sample
from service.samples.root import BRANCHES, METADATA_KEY, TREE

MUONGAN = str(Path(sys.executable).parent / "muongan")
# Crosses the tiny model's block boundary (65,536): the file is written in two blocks.
SEED, START, N = 5, 65_000, 1_000


def muongan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MUONGAN, *map(str, args)], capture_output=True, text=True, timeout=120)


def generate(out: Path, *args: str | Path) -> str:
    result = muongan("generate", "--out", out, "--no-progress", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def whole(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows [START, START + N) of SEED as npy, made in-process."""
    path = tmp_path_factory.mktemp("whole") / "whole.npy"
    generate(path, "--model", tiny_model, "--seed", SEED, "--start", START, "--n", N)
    return path


def test_in_process_and_server_files_are_identical(whole: Path, base_url: str, tmp_path: Path) -> None:
    served = tmp_path / "served.npy"
    stdout = generate(served, "--url", base_url, "--seed", SEED, "--start", START, "--n", N)
    assert served.read_bytes() == whole.read_bytes()
    assert json.loads(Path(f"{served}.json").read_text()) == json.loads(Path(f"{whole}.json").read_text())
    assert f"{N:,} plain muons, seed {SEED} rows [{START:,}, {START + N:,})" in stdout


def test_boosted_in_process_equals_boosted_from_the_server(tiny_model: Path, base_url: str, tmp_path: Path) -> None:
    options = ["--seed", "3", "--n", "700", "--scale-pt", "3", "--scale-z", "2"]
    generate(tmp_path / "local.arrow", "--model", tiny_model, *options)
    stdout = generate(tmp_path / "served.arrow", "--url", base_url, *options)
    local, served = read_sample(tmp_path / "local.arrow"), read_sample(tmp_path / "served.arrow")
    np.testing.assert_array_equal(local.muons, served.muons)
    assert local.metadata == served.metadata
    assert json.loads(served.metadata["scale"]) == {"xy": 1.0, "z": 2.0, "pt": 3.0, "pz": 1.0}
    assert "effective sample size" in stdout and np.ptp(served.muons[:, -1]) > 0


def test_a_shard_is_the_same_rows_of_the_whole_range(whole: Path, tiny_model: Path, tmp_path: Path) -> None:
    """Job k of a sharded run makes exactly rows [k*n, (k+1)*n) of the seed's stream (here across a block edge)."""
    half = N // 2
    generate(tmp_path / "shard1.npy", "--model", tiny_model, "--seed", SEED, "--start", START + half, "--n", half)
    np.testing.assert_array_equal(np.load(tmp_path / "shard1.npy"), np.load(whole)[half:])


def test_root_file_is_a_fairship_tree_in_metres_with_the_buffer_row(
    whole: Path, tiny_model: Path, tmp_path: Path
) -> None:
    path = tmp_path / "muons.root"
    generate(path, "--model", tiny_model, "--seed", SEED, "--start", START, "--n", N, "--z-offset-cm", "3000")
    muons = np.load(whole)
    with uproot.open(path) as file:
        assert file.classnames()[f"{TREE};1"] == "TTree"  # not an RNTuple: FairShip reads TTrees only
        tree = file[TREE]
        assert tuple(tree.keys()) == BRANCHES
        assert all(str(tree[name].interpretation) == "AsDtype('>f4')" for name in BRANCHES)
        branches = tree.arrays(library="np")
        metadata = json.loads(str(file[METADATA_KEY]))
    assert tree.num_entries == N + 1
    assert all(values[-1] == 0 for values in branches.values())  # FairShip never simulates the last entry
    rows = slice(None, -1)
    np.testing.assert_array_equal(branches["id"][rows], muons[:, 0])
    np.testing.assert_array_equal(branches["pythiaid"][rows], muons[:, 0])
    np.testing.assert_array_equal(branches["w"][rows], muons[:, 7])
    np.testing.assert_array_equal(branches["pz"][rows], muons[:, 6])
    np.testing.assert_array_equal(branches["x"][rows], (muons[:, 1].astype(np.float64) / 100).astype(np.float32))
    np.testing.assert_array_equal(
        branches["z"][rows], ((muons[:, 3].astype(np.float64) + 3000) / 100).astype(np.float32)
    )
    manifest = Manifest.load(tiny_model)
    assert metadata["z_offset_cm"] == "3000.0" and metadata["model_sha256"] == manifest.files["generator.onnx"]
    assert (metadata["seed"], metadata["start"], metadata["n"]) == (str(SEED), str(START), str(N))
    assert float(metadata["equivalent_pot"]) == pytest.approx(N / manifest.muons_per_pot, rel=1e-12)


def test_parquet_and_csv_hold_the_same_muons(whole: Path, tiny_model: Path, tmp_path: Path) -> None:
    options = ["--model", tiny_model, "--seed", SEED, "--start", START, "--n", N]
    generate(tmp_path / "muons.parquet", *options)
    generate(tmp_path / "muons.txt", "--format", "csv", *options)
    muons = np.load(whole)
    parquet = read_sample(tmp_path / "muons.parquet")
    np.testing.assert_array_equal(parquet.muons, muons)
    assert parquet.metadata["seed"] == str(SEED)
    types = pa_csv.ConvertOptions(column_types={name: pa.float32() for name in COLUMNS})
    table = pa_csv.read_csv(tmp_path / "muons.txt", convert_options=types)
    assert table.column_names == list(COLUMNS)
    np.testing.assert_array_equal(np.column_stack([table[name].to_numpy() for name in COLUMNS]), muons)
    assert json.loads((tmp_path / "muons.txt.json").read_text())["n"] == str(N)


def test_errors_are_one_clear_line_and_a_nonzero_status(tiny_model: Path, base_url: str, tmp_path: Path) -> None:
    whole = tmp_path / "a.npy"
    no_model = muongan("generate", "--model", tmp_path, "--n", "5", "--out", tmp_path / "a.npy")
    assert no_model.returncode == 2 and "has no model.json" in no_model.stderr
    too_many = muongan("generate", "--url", base_url, "--n", "6e6", "--out", tmp_path / "a.npy", "--no-progress")
    assert too_many.returncode == 1 and "exceeds this server's limit of 5000000" in too_many.stderr
    clash = muongan(
        "generate", "--model", tiny_model, "--n", "5", "--scale-pt", "2", "--seeds", "x.npy", "--out", whole
    )
    assert clash.returncode == 2 and "different modes" in clash.stderr
    assert not any(tmp_path.glob("a.npy*"))


def test_the_output_folder_is_made_as_a_fresh_clone_needs(tiny_model: Path, tmp_path: Path) -> None:
    """The docs write into data/, which a fresh clone does not have."""
    out = tmp_path / "data" / "shards" / "muons.npy"
    generate(out, "--model", tiny_model, "--seed", SEED, "--n", 10)
    assert np.load(out).shape == (10, len(COLUMNS))


@pytest.mark.parametrize(
    ("option", "value"), [("--n", "0"), ("--n", "-3"), ("--draw-threads", "0"), ("--threads", "-1")]
)
def test_counts_below_their_least_are_refused(tiny_model: Path, tmp_path: Path, option: str, value: str) -> None:
    options = {"--n": "5", option: value}
    result = muongan("generate", "--model", tiny_model, "--out", tmp_path / "a.npy", *sum(options.items(), ()))
    assert result.returncode == 2 and f"argument {option}: must be >= " in result.stderr
    assert not any(tmp_path.iterdir())
