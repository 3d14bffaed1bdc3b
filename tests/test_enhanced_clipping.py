"""Seed-enhanced generation takes seeds from the other beam-spot convention: it clips, counts, stays exact.

A model judges seed muons through its discriminator's aux heads, trained on its own sample. Seeds unlike
that sample (from another simulation, or made with the other beam-spot convention) can get aux above the
trained range (``aux_range`` in ``model.json``). A
minority of such seeds is clipped to the range's edge and counted (``X-Clipped-Seeds``, the metadata,
the CLI summary); the proposal is built from the clipped values, so the importance weights stay exact.
Only when most seeds are outside is the request refused, naming the share.

Seeds are real files: spotless ones are the Pythia sample the tiny model is trained on (``tiny_sample``),
painted ones the same protons with FairShip's spot painted (``muongan sample --beam-spot``), on which the
painted tiny model is trained.
"Outside" is computed here independently of the service, with onnxruntime on ``discriminator.onnx``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pyarrow.ipc as ipc
import pytest
from scipy import special
from test_service import Server, muons_from

from muongan.cli import main
from service.contract.modes import Enhanced, engine_source
from service.engine.generation import Engine, SeedSource
from service.engine.model import Model
from service.engine.streams import segments
from service.samples import read_sample, write_sample
from service.samples.sample import Sample


def outside_trained_range(folder: Path, muons: np.ndarray) -> np.ndarray:
    """Rows whose aux-head answer (clipped at 0) is above ``aux_range`` in some group, or not a number."""
    manifest = json.loads((folder / "model.json").read_text())
    ceiling = np.array([manifest["aux_range"][group][1] for group in manifest["aux_groups"]], np.float32)
    session = ort.InferenceSession(str(folder / "discriminator.onnx"), providers=["CPUExecutionProvider"])
    aux = np.maximum(session.run(["aux"], {"muons": np.ascontiguousarray(muons[:, :7], np.float32)})[0], 0)
    result: np.ndarray = ~np.all(aux <= ceiling, axis=1)
    return result


@pytest.fixture(scope="module")
def painted_seeds(tiny_painted_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 muons of the painted Pythia sample as one Parquet file (the test server takes at most 5,000 seeds)."""
    path = tmp_path_factory.mktemp("painted") / "painted.parquet"
    write_sample(Sample(read_sample(tiny_painted_sample).muons[:4000]), path)
    return path


def _arrow_metadata(response: httpx.Response) -> dict[str, str]:
    schema = ipc.open_stream(response.content).schema
    return {k.decode(): v.decode() for k, v in schema.metadata.items()}


def test_painted_seeds_on_a_spotless_model_are_clipped_and_counted(tiny_model: Path, painted_seeds: Path) -> None:
    seeds = read_sample(painted_seeds).muons
    clipped = int(outside_trained_range(tiny_model, seeds).sum())
    assert 0 < clipped < len(seeds) / 2, clipped  # painted rings are rare where the tiny model learnt its aux
    with Server(tiny_model) as url, httpx.Client(base_url=url, timeout=120) as client:
        params: dict[str, str | int] = {"n": 20_000, "seed": 4, "format": "arrow"}
        response = client.post("/v1/muons/enhanced", params=params, content=painted_seeds.read_bytes())
        assert response.status_code == 200, response.text
        assert response.headers["X-Clipped-Seeds"] == str(clipped)
        metadata = _arrow_metadata(response)
        assert (metadata["clipped_seeds"], metadata["seeds"]) == (str(clipped), str(len(seeds)))
        muons = muons_from(response, "arrow")
        ess = float(response.headers["X-Effective-Sample-Size"])
        # Weights are p_plain / q of what was drawn: their mean is 1 within its error.
        weight = muons[:, 7].astype(np.float64)
        assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(len(weight)))
        assert 0.05 * len(muons) < ess <= len(muons)
        print(f"painted seeds on the spotless tiny model: {clipped} of {len(seeds)} clipped, ESS {ess:.0f}")


def test_weights_stay_exact_for_the_clipped_proposal(tiny_model: Path, painted_seeds: Path) -> None:
    """Weighted, aux drawn around clipped seeds reproduce the plain aux distribution (half-normal marginals).

    Were the weights made from the density of a proposal around the unclipped aux, while drawing around the
    clipped values, both the mean weight and the weighted tail shares would be off.
    """
    engine = Engine(Model.load(tiny_model, "cpu"))
    try:
        source, _ = engine_source(engine, Enhanced(read_sample(painted_seeds).muons, plain_fraction=0.1))
        assert isinstance(source, SeedSource) and source.clipped_seeds > 0
        n = 200_000
        latents = [source.draw(9, segment) for segment in segments(0, n, engine.block_size)]
    finally:
        engine.close()
    aux = np.concatenate([latent.aux for latent in latents]).astype(np.float64)
    weight = np.concatenate([latent.weight for latent in latents]).astype(np.float64)
    assert weight.mean() == pytest.approx(1, abs=4 * weight.std() / np.sqrt(n))
    for cut in (1.0, 2.5):
        plain_share = special.erfc(cut / np.sqrt(2))  # P(half-normal > cut)
        tail = weight[:, None] * (aux > cut)
        error = np.sqrt(tail.var(axis=0) / n)
        assert tail.mean(axis=0) == pytest.approx(np.full(4, plain_share), abs=5 * error.max() + 1e-4), cut


def test_spotless_seeds_on_the_painted_model_make_painted_muons(
    tiny_painted_model: Path, tiny_sample: Path, tmp_path: Path
) -> None:
    seeds = read_sample(tiny_sample).muons[:3000]  # the test server's seed limit is 5000
    write_sample(Sample(seeds), tmp_path / "spotless.parquet")
    clipped = int(outside_trained_range(tiny_painted_model, seeds).sum())
    with Server(tiny_painted_model) as url, httpx.Client(base_url=url, timeout=120) as client:
        params: dict[str, str | int] = {"n": 20_000, "seed": 6, "format": "npy"}
        response = client.post(
            "/v1/muons/enhanced", params=params, content=(tmp_path / "spotless.parquet").read_bytes()
        )
        muons = muons_from(response)
    assert response.headers["X-Clipped-Seeds"] == str(clipped)
    assert response.headers["X-Beam-Spot"] == "painted"
    # The seeds start on the axis; the model makes muons on its painted ring, whatever the seeds.
    on_axis = np.mean(np.hypot(seeds[:, 1], seeds[:, 2]) < 0.1)
    made_on_axis = np.average(np.hypot(muons[:, 1], muons[:, 2]) < 0.1, weights=muons[:, 7])
    ess = float(response.headers["X-Effective-Sample-Size"])
    print(f"spotless seeds on the painted model: {clipped} of {len(seeds)} clipped, ESS {ess:.0f}, r < 1 mm:", end=" ")
    print(f"seeds {on_axis:.1%}, muons {made_on_axis:.2%} (weighted)")
    assert on_axis > 0.3 and made_on_axis < 0.01


def _mixed(folder: Path, painted: Path, outside: int, inside: int, out: Path) -> Path:
    """A seed file of ``outside`` seeds beyond the model's trained range and ``inside`` within it."""
    seeds = read_sample(painted).muons
    beyond = outside_trained_range(folder, seeds)
    assert beyond.sum() >= outside and (~beyond).sum() >= inside
    write_sample(Sample(np.concatenate([seeds[beyond][:outside], seeds[~beyond][:inside]])), out)
    return out


def test_most_seeds_outside_is_refused_naming_the_share(
    tiny_model: Path, painted_seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    most = _mixed(tiny_model, painted_seeds, 31, 29, tmp_path / "most.parquet")
    half = _mixed(tiny_model, painted_seeds, 30, 30, tmp_path / "half.parquet")
    with Server(tiny_model) as url, httpx.Client(base_url=url, timeout=60) as client:
        refused = client.post("/v1/muons/enhanced", params={"n": 100}, content=most.read_bytes())
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("31 of 60 seed muons (51.7%) are beyond what this model")
        served = client.post("/v1/muons/enhanced", params={"n": 100, "format": "npy"}, content=half.read_bytes())
        assert served.status_code == 200 and served.headers["X-Clipped-Seeds"] == "30"
    argv = ["generate", "--model", str(tiny_model), "--n", "100", "--no-progress"]
    assert main([*argv, "--seeds", str(most), "--out", str(tmp_path / "most.npy")]) == 2
    assert capsys.readouterr().err.startswith("muongan generate: 31 of 60 seed muons (51.7%) are beyond")
    assert not (tmp_path / "most.npy").exists()
    assert main([*argv, "--seeds", str(half), "--out", str(tmp_path / "half.npy")]) == 0
    assert ", 30 of 60 seeds clipped into the trained aux range" in capsys.readouterr().out
    assert json.loads((tmp_path / "half.npy.json").read_text())["clipped_seeds"] == "30"
    assert np.load(io.BytesIO((tmp_path / "half.npy").read_bytes())).shape == (100, 8)
