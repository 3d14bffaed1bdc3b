"""Plots as users get them: ``muongan plot`` (subprocess), ``GET /v1/plot`` (real server), PNGs decoded by Pillow."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from service.engine.generation import Engine
from service.engine.model import Model
from service.plots import drawing as plots
from service.plots import figures
from service.samples import Sample, write_sample

MUONGAN = str(Path(sys.executable).parent / "muongan")
# Pixel sizes at 100 dpi of a single sample's figures: the kinematics grid wraps its six pairs onto
# 2 rows of 3 panels (3.6 in each, plus 1 in for colour bars), p-pT is one 4.5 in panel plus 1 in.
SIZES = {"kinematics": (1180, 720), "p_pt": (550, 450)}


def decoded(png: bytes) -> Image.Image:
    """A PNG decoded in full (a truncated or corrupt file raises here)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def drawn_colours(image: Image.Image) -> int:
    """Distinct colours: a few for a blank or axes-only figure, hundreds for filled log-colour histograms."""
    return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ())


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[Engine]:
    engine = Engine(Model.load(tiny_model, "cpu"), draw_threads=2)
    yield engine
    engine.close()


@pytest.mark.parametrize("kind", list(figures.KINDS))
@pytest.mark.parametrize("dpi", [100, 50])
def test_each_kind_renders_a_png_of_the_expected_size(engine: Engine, kind: str, dpi: int) -> None:
    plotted = figures.from_model(engine, 20_000, seed=1, start=0)
    image = decoded(figures.png(kind, plotted.muons, plotted.label, plotted.title, dpi))
    width, height = SIZES[kind]
    assert image.size == (width * dpi // 100, height * dpi // 100)
    assert drawn_colours(image) > 100


def test_figures_name_the_axes_with_units_and_say_what_was_plotted(engine: Engine) -> None:
    plotted = figures.from_model(engine, 5_000, seed=2, start=10)
    figure = figures.figure("kinematics", plotted.muons, plotted.label, plotted.title)
    labels = {ax.get_xlabel() for ax in figure.axes} | {ax.get_ylabel() for ax in figure.axes}
    assert {"x [cm]", "y [cm]", "z [cm]", "px [GeV/c]", "py [GeV/c]", "pz [GeV/c]", "pT [GeV/c]"} <= labels
    assert "seed 2, muons 10 to 5,010" in plotted.label
    assert figure.get_suptitle().startswith("5,000 muons, sum of weights 5,000, ")
    with pytest.raises(ValueError, match="unknown plot kind"):
        figures.figure("energy", plotted.muons, "x")
    with pytest.raises(ValueError, match="empty sample"):
        figures.figure("p_pt", plotted.muons[:0], "x")


def test_server_plot_is_the_cli_plot_of_the_same_slice(base_url: str, tiny_model: Path, tmp_path: Path) -> None:
    params = {"kind": "kinematics", "n": 30_000, "seed": 3, "start": 7}
    response = httpx.get(f"{base_url}/v1/plot", params=params, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-muon-count"] == "30000" and response.headers["x-seed"] == "3"
    assert decoded(response.content).size == SIZES["kinematics"]
    out = tmp_path / "kinematics.png"
    options = ["--n", "30000", "--seed", "3", "--start", "7", "--kind", "kinematics", "--out", str(out)]
    result = subprocess.run([MUONGAN, "plot", "--model", str(tiny_model), *options], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == response.content


def test_server_plot_refuses_bad_parameters(base_url: str) -> None:
    for params, problem in (({"kind": "energy"}, "kind"), ({"n": 10**9}, "n"), ({"n": 0}, "n")):
        response = httpx.get(f"{base_url}/v1/plot", params=params, timeout=60)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", problem]


def test_cli_plots_a_weighted_root_file_into_a_folder(engine: Engine, tmp_path: Path) -> None:
    muons = figures.from_model(engine, 20_000, seed=4, start=0).muons
    muons[:, -1] = np.random.default_rng(0).uniform(0.5, 2.0, len(muons)).astype(np.float32)
    sample = tmp_path / "weighted.root"
    write_sample(Sample(muons, {"muons_per_pot": "0.5"}), sample)
    result = subprocess.run(
        [MUONGAN, "plot", "--sample", str(sample), "--out", str(tmp_path / "plots")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for kind, size in SIZES.items():
        image = decoded((tmp_path / "plots" / f"{kind}.png").read_bytes())
        assert image.size == size and drawn_colours(image) > 100
    assert result.stdout.split() == [str(tmp_path / "plots" / f"{kind}.png") for kind in SIZES]
    one_file = subprocess.run(
        [MUONGAN, "plot", "--sample", str(sample), "--out", str(tmp_path / "x.png")], capture_output=True, text=True
    )
    assert one_file.returncode == 2 and "choose one --kind" in one_file.stderr


def colour_bars(figure: Figure) -> list[Axes]:
    FigureCanvasAgg(figure).draw()
    return [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]


def test_a_weighted_sample_has_its_colour_scale_floored_and_says_so(engine: Engine) -> None:
    muons = figures.from_model(engine, 20_000, seed=5, start=0).muons
    muons[:, -1] = 10.0 ** np.random.default_rng(1).uniform(-40, 0, len(muons))  # weights over 40 decades
    figure = plots.kinematics_grid(muons)
    meshes = [ax.collections[0] for ax in figure.axes if ax.collections and ax.get_label() != "<colorbar>"]
    assert len(meshes) == len(plots.PAIRS)
    for mesh in meshes:
        assert mesh.norm.vmin == pytest.approx(plots.COLOUR_FLOOR * mesh.norm.vmax)
    for bar in colour_bars(figure):
        assert f"below {plots.COLOUR_FLOOR:g} of max" in bar.get_ylabel()


def test_axes_say_when_their_range_cuts_a_tail(engine: Engine) -> None:
    muons = figures.from_model(engine, 20_000, seed=6, start=0).muons
    muons[0, 1] = 1e4  # one muon far out in x
    labels = [ax.get_xlabel() for ax in plots.kinematics_grid(muons).axes] + [
        ax.get_xlabel() for ax in plots.kinematics_grid(muons[:1000]).axes
    ]
    assert any(label.startswith("x [cm] (tails cut: ") and label.endswith("% in edge bins)") for label in labels)
    assert "x [cm]" in labels  # 1,000 muons: the axis spans them all and says nothing more


@pytest.mark.parametrize("kind", list(figures.KINDS))
def test_a_thousand_muons_get_colour_bars_with_readable_ticks(engine: Engine, kind: str) -> None:
    plotted = figures.from_model(engine, 1_000, seed=7, start=0)
    for bar in colour_bars(figures.figure(kind, plotted.muons, plotted.label)):
        low, high = sorted(bar.get_ylim())
        shown = [t for t in bar.get_yticklabels() if t.get_text() and low <= t.get_position()[1] <= high]
        assert len(shown) >= 2, [t.get_text() for t in bar.get_yticklabels()]
        boxes = [t.get_window_extent() for t in shown]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
