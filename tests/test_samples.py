"""Sample I/O: exact round trips for every format, and clear errors for bad files."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from service.contract.muons import COLUMNS, SampleError, column, validate
from service.samples import detect_format, read_sample, write_sample
from service.samples.root import BRANCHES, TREE
from service.samples.sample import Sample


def make_muons(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    muons = np.empty((n, len(COLUMNS)), dtype=np.float32)
    muons[:, 0] = rng.choice([13, -13], n)
    muons[:, 1:3] = rng.normal(0, 3, (n, 2))
    muons[: n // 10, 1:3] = 0  # primary vertices sit exactly on the axis
    muons[:, 3] = -7084.5 + rng.exponential(20, n)
    muons[:, 4:6] = rng.normal(0, 0.8, (n, 2))
    muons[:, 6] = 10 + rng.exponential(30, n)
    muons[:, 7] = rng.uniform(0.01, 1, n)
    return muons


@pytest.fixture
def sample() -> Sample:
    return Sample(make_muons(2000), {"muons_per_pot": "0.0123", "seed": "7"})


@pytest.mark.parametrize("name", ["s.npy", "s.parquet", "s.arrow", "s.feather"])
def test_round_trip_is_exact(tmp_path: Path, sample: Sample, name: str) -> None:
    write_sample(sample, tmp_path / name)
    back = read_sample(tmp_path / name)
    np.testing.assert_array_equal(back.muons, sample.muons)
    assert back.metadata == sample.metadata
    from_bytes = read_sample((tmp_path / name).read_bytes())  # uploads: format from content
    np.testing.assert_array_equal(from_bytes.muons, sample.muons)


def test_root_round_trip_and_layout(tmp_path: Path, sample: Sample) -> None:
    path = tmp_path / "s.root"
    write_sample(sample, path)
    with uproot.open(path) as file:
        tree = file[TREE]
        assert type(tree).__name__.startswith("Model_TTree")  # a TTree, never an RNTuple
        assert tuple(tree.keys()) == BRANCHES and len(BRANCHES) < 17
        assert all(tree[name].typename == "float" for name in BRANCHES)  # Float_t, as FairShip binds them
        branches = tree.arrays(library="np")
    assert all(values[-1] == 0 for values in branches.values())  # FairShip never simulates the last row
    np.testing.assert_allclose(branches["x"][:-1], sample.muons[:, column("x")] / 100, rtol=1e-6)
    np.testing.assert_allclose(branches["z"][:-1], (sample.muons[:, column("z")] + 2084.5) / 100, rtol=1e-6)
    np.testing.assert_array_equal(branches["id"][:-1], branches["pythiaid"][:-1])

    back = read_sample(path)
    assert back.metadata == sample.metadata
    exact = [column(name) for name in ("pdg", "z", "px", "py", "pz", "weight")]
    np.testing.assert_array_equal(back.muons[:, exact], sample.muons[:, exact])
    transverse = [column("x"), column("y")]
    spacing = np.spacing(np.abs(sample.muons[:, transverse]))
    assert np.all(np.abs(back.muons[:, transverse] - sample.muons[:, transverse]) <= spacing)
    assert np.all(back.muons[: len(sample) // 10, transverse] == 0)


def test_seven_column_npy_gets_unit_weights(tmp_path: Path, sample: Sample) -> None:
    np.save(tmp_path / "seven.npy", sample.muons[:, :7])
    back = read_sample(tmp_path / "seven.npy")
    np.testing.assert_array_equal(back.muons[:, :7], sample.muons[:, :7])
    assert np.all(back.muons[:, -1] == 1)


def test_parquet_without_weight_column(tmp_path: Path, sample: Sample) -> None:
    table = pa.table({name: sample.muons[:, i] for i, name in enumerate(COLUMNS[:7])})
    pq.write_table(table, tmp_path / "noweight.parquet")
    assert np.all(read_sample(tmp_path / "noweight.parquet").muons[:, -1] == 1)


@pytest.mark.parametrize(
    ("col", "value", "message"),
    [
        ("x", np.nan, "non-finite value nan in column 'x' at row 5"),
        ("pz", np.inf, "non-finite value inf in column 'pz' at row 5"),
        ("pdg", 211, "column 'pdg' must be +13 or -13: 211.0 at row 5"),
        ("weight", 0, "column 'weight' must be positive: 0.0 at row 5"),
        ("weight", -2, "column 'weight' must be positive: -2.0 at row 5"),
    ],
)
def test_validation_names_row_and_column(col: str, value: float, message: str) -> None:
    muons = make_muons(10)
    muons[5, column(col)] = value
    with pytest.raises(SampleError, match=message.replace("(", r"\(").replace("+", r"\+")):
        validate(muons)


def test_pickled_npy_is_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SampleError, match="refused"):
        read_sample(buffer.getvalue())
    with pytest.raises(SampleError, match="unrecognised"):
        read_sample(pickle.dumps(make_muons(3)))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "unrecognised"),
        (b"hello world", "unrecognised"),
        (b"\x93NUMPY\x01\x00garbage", "npy"),
        (b"PAR1" + b"\x00" * 20, "Parquet"),
        (b"ARROW1\x00\x00" + b"\x01" * 20, "Arrow"),
        (b"root" + b"\x00" * 40, "ROOT"),
    ],
)
def test_garbage_uploads_give_clear_errors(payload: bytes, message: str) -> None:
    with pytest.raises(SampleError, match=message):
        read_sample(payload)


def test_truncated_files_give_clear_errors(tmp_path: Path, sample: Sample) -> None:
    for name in ("t.npy", "t.parquet", "t.arrow", "t.root"):
        write_sample(sample, tmp_path / name)
        data = (tmp_path / name).read_bytes()
        with pytest.raises(SampleError):
            read_sample(data[: len(data) // 2])


def test_wrong_shapes_and_columns(tmp_path: Path) -> None:
    np.save(tmp_path / "five.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(SampleError, match=r"shape \(n, 7\) or \(n, 8\)"):
        read_sample(tmp_path / "five.npy")
    pq.write_table(pa.table({"pdg": [13.0], "x": [0.0]}), tmp_path / "few.parquet")
    with pytest.raises(SampleError, match="missing column"):
        read_sample(tmp_path / "few.parquet")
    table = pa.table({name: [1.0] for name in (*COLUMNS, "energy")})
    pq.write_table(table, tmp_path / "extra.parquet")
    with pytest.raises(SampleError, match="unknown column"):
        read_sample(tmp_path / "extra.parquet")
    with pytest.raises(SampleError, match="cannot tell the format"):
        write_sample(Sample(make_muons(2)), tmp_path / "s.txt")


def test_root_file_without_tree(tmp_path: Path) -> None:
    with uproot.recreate(tmp_path / "other.root") as file:
        file.mktree("events", {"a": np.float32}).extend({"a": np.zeros(3, np.float32)})
    with pytest.raises(SampleError, match="no 'pythia8-Geant4' tree"):
        read_sample(tmp_path / "other.root")


def test_detect_format() -> None:
    assert detect_format(b"\x93NUMPY\x01\x00") == "npy"
    assert detect_format(b"PAR1....") == "parquet"
    assert detect_format(b"\xff\xff\xff\xff\x10\x00") == "arrow"
