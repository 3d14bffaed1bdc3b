"""Response encoders: each format, concatenated block by block, reads back exactly with its own library."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import uproot

from service.contract.muons import COLUMNS
from service.samples import read_sample
from service.samples.encoders import root_file, stream_encoder
from service.samples.root import TREE

METADATA = {"seed": "7", "start": "0", "n": "1500", "equivalent_pot": "12.5"}


def make_muons(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    muons = rng.normal(0, 10, (n, len(COLUMNS))).astype(np.float32)
    muons[:, 0] = rng.choice([13.0, -13.0], n)
    muons[:, -1] = rng.uniform(0.001, 5, n)
    return muons


def encode(fmt: str, muons: np.ndarray, block: int = 400) -> bytes:
    encoder = stream_encoder(fmt, len(muons), METADATA)
    parts = [encoder.start()]
    parts += [encoder.encode(muons[lo : lo + block]) for lo in range(0, len(muons), block)]
    return b"".join([*parts, encoder.finish()])


@pytest.mark.parametrize("n", [0, 1, 1500])
def test_arrow_stream_has_one_batch_per_block_and_the_metadata(n: int) -> None:
    muons = make_muons(n)
    reader = pa.ipc.open_stream(encode("arrow", muons))
    batches = list(reader)
    assert len(batches) == -(-n // 400)
    assert reader.schema.names == list(COLUMNS)
    assert {k.decode(): v.decode() for k, v in reader.schema.metadata.items()} == METADATA
    table = pa.Table.from_batches(batches, schema=reader.schema)
    np.testing.assert_array_equal(np.column_stack([table[c].to_numpy() for c in COLUMNS]).reshape(n, 8), muons)


@pytest.mark.parametrize("n", [0, 1, 1500])
def test_npy_stream_loads_as_one_array(n: int) -> None:
    muons = make_muons(n)
    back = np.load(io.BytesIO(encode("npy", muons)), allow_pickle=False)
    assert back.dtype == np.float32 and back.shape == (n, 8)
    np.testing.assert_array_equal(back, muons)


def test_csv_round_trips_float32_exactly() -> None:
    muons = make_muons(1500)
    data = encode("csv", muons)
    assert data.startswith(b"pdg,x,y,z,px,py,pz,weight\n")
    options = pa_csv.ConvertOptions(column_types={c: pa.float32() for c in COLUMNS})
    table = pa_csv.read_csv(io.BytesIO(data), convert_options=options)
    np.testing.assert_array_equal(np.column_stack([table[c].to_numpy() for c in COLUMNS]), muons)


def test_root_file_is_a_fairship_tree() -> None:
    muons = make_muons(300)
    data = root_file(muons, METADATA)
    with uproot.open(io.BytesIO(data)) as file:
        assert file[TREE].num_entries == 301  # plus FairShip's all-zero last row
    back = read_sample(data)
    # float32 metres in FairShip's frame (z offset 20.845 m) keep z to about 1e-4 cm.
    np.testing.assert_allclose(back.muons, muons, rtol=2e-6, atol=2e-4)
    assert back.metadata == METADATA


def test_root_is_not_streamed() -> None:
    with pytest.raises(ValueError, match="not streamed"):
        stream_encoder("root", 1, {})
