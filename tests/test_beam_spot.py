"""Every muon handed out states its model's beam-spot convention and the FairShip flags that go with it.

SHiP's production files carry no beam spot and FairShip paints one as it reads them (its defaults
``--SmearBeam 0.8 --PaintBeam 5``); a model trained on spot-painted muons needs ``--SmearBeam 0 --PaintBeam 0``
instead. The record is ``beam_spot`` in ``model.json``; here it is read back from every place it must reach:
``GET /v1/model``, the headers of every muon response (exposed to browsers through CORS), the Arrow schema, the
ROOT file's JSON ``TObjString``, the npy/CSV sidecars and the summary line of ``muongan generate``, in-process
and from a server. Three models: the shipped (spotless) one, the tiny model trained on a painted sample
(``muongan sample --beam-spot``), and a copy of the shipped one without the record (an older model).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import uproot
from test_service import Server, npy_bytes

from muongan.cli import main
from service.samples.root import METADATA_KEY

DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"
pytestmark = pytest.mark.skipif(not (DEFAULT / "model.json").is_file(), reason="models/default is not there yet")

PAINTED_FLAGS = "--SmearBeam 0 --PaintBeam 0"
FAIRSHIP_DEFAULTS = "--SmearBeam 0.8 --PaintBeam 5"
UNKNOWN = "unknown: model.json has no beam_spot record; see training_sample"
# What each model must state: (X-Beam-Spot, X-FairShip-Flags, the summary's words).
EXPECTED = {
    "painted": ("painted", PAINTED_FLAGS, f"beam spot painted: run FairShip with {PAINTED_FLAGS}"),
    "spotless": ("spotless", FAIRSHIP_DEFAULTS, f"beam spot spotless: run FairShip with {FAIRSHIP_DEFAULTS}"),
    "unknown": ("unknown", UNKNOWN, f"beam spot {UNKNOWN}"),
}
ORIGIN = "https://viewer.example"


@pytest.fixture(scope="module", params=list(EXPECTED))
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(convention, folder): models/default as shipped, the painted tiny model, or a copy of models/default
    without its beam_spot record."""
    convention: str = request.param
    if convention == "spotless":
        return convention, DEFAULT
    if convention == "painted":
        folder: Path = request.getfixturevalue("tiny_painted_model")
        return convention, folder
    folder = tmp_path_factory.mktemp(convention) / "model"
    shutil.copytree(DEFAULT, folder)
    manifest = json.loads((folder / "model.json").read_text())
    del manifest["beam_spot"]
    (folder / "model.json").write_text(json.dumps(manifest, indent=2))
    return convention, folder


@pytest.fixture(scope="module")
def served(model: tuple[str, Path]) -> Iterator[tuple[str, httpx.Client]]:
    convention, folder = model
    with Server(folder, cors_origins=ORIGIN) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield convention, client


def _root_metadata(content: bytes | Path) -> dict[str, str]:
    with uproot.open(io.BytesIO(content) if isinstance(content, bytes) else content) as file:
        metadata: dict[str, str] = json.loads(str(file[METADATA_KEY]))
    return metadata


def _stated(metadata: dict[str, str]) -> tuple[str, str]:
    return metadata["beam_spot"], metadata["fairship_flags"]


def test_the_model_route_states_the_convention(served: tuple[str, httpx.Client]) -> None:
    convention, client = served
    record = client.get("/v1/model").json()["beam_spot"]
    assert (record["convention"], record["fairship_flags"]) == EXPECTED[convention][:2]
    if convention != "unknown":  # the record as training wrote it, from its sample's metadata
        assert record["source"] == "the training sample's metadata (beam_spot)"


@pytest.mark.parametrize("fmt", ["arrow", "npy", "csv", "root"])
def test_every_muon_response_states_it_in_headers_and_metadata(served: tuple[str, httpx.Client], fmt: str) -> None:
    convention, client = served
    expected = EXPECTED[convention][:2]
    seeds = np.load(io.BytesIO(client.get("/v1/muons", params={"n": 20, "seed": 2, "format": "npy"}).content))
    answers = [
        client.get("/v1/muons", params={"n": 50, "seed": 1, "format": fmt}),
        client.post("/v1/muons/boosted", json={"n": 50, "seed": 1, "format": fmt, "scale": {"pt": 2}}),
        client.post("/v1/muons/enhanced", params={"n": 50, "format": fmt}, content=npy_bytes(seeds)),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert (response.headers["X-Beam-Spot"], response.headers["X-FairShip-Flags"]) == expected
        if fmt == "arrow":
            schema = ipc.open_stream(response.content).schema
            assert _stated({k.decode(): v.decode() for k, v in schema.metadata.items()}) == expected
        elif fmt == "root":
            assert _stated(_root_metadata(response.content)) == expected
        elif fmt == "npy":
            assert np.load(io.BytesIO(response.content)).shape == (50, 8)


def test_browsers_may_read_the_beam_spot_headers(served: tuple[str, httpx.Client]) -> None:
    _, client = served
    response = client.get("/v1/muons", params={"n": 5, "format": "csv"}, headers={"Origin": ORIGIN})
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-beam-spot", "x-fairship-flags", "x-clipped-seeds"} <= exposed


def _generate(capsys: pytest.CaptureFixture[str], out: Path, *source: str) -> str:
    """``muongan generate`` into ``out``; its one-line summary."""
    assert main(["generate", *source, "--n", "40", "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    return capsys.readouterr().out.strip()


def _file_metadata(path: Path) -> dict[str, str]:
    """The metadata a written file carries, read by the format's own library (sidecar JSON for npy and CSV)."""
    if path.suffix in (".npy", ".csv"):
        metadata: dict[str, str] = json.loads(path.with_name(path.name + ".json").read_text())
        return metadata
    if path.suffix == ".root":
        return _root_metadata(path)
    schema = pq.read_schema(path) if path.suffix == ".parquet" else ipc.open_file(pa.memory_map(str(path))).schema
    return {k.decode(): v.decode() for k, v in schema.metadata.items()}


@pytest.mark.parametrize("where", ["in-process", "from the server"])
def test_generated_files_and_the_summary_state_it(
    served: tuple[str, httpx.Client],
    model: tuple[str, Path],
    where: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    convention, client = served
    source = ["--model", str(model[1])] if where == "in-process" else ["--url", str(client.base_url)]
    for suffix in (".arrow", ".npy", ".csv", ".root", ".parquet"):
        out = tmp_path / f"muons{suffix}"
        summary = _generate(capsys, out, *source)
        assert summary.startswith(f"{out}: 40 plain muons") and summary.endswith(EXPECTED[convention][2]), summary
        assert _stated(_file_metadata(out)) == EXPECTED[convention][:2], suffix
