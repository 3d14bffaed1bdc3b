"""Loading a model folder for serving, and `muongan serve` as a real process."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.commands import serve as command_serve
from service.engine.model import Model, ModelError
from service.http.settings import Settings


@pytest.fixture
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


def test_a_changed_onnx_file_is_refused_naming_both_digests(model_copy: Path) -> None:
    expected = json.loads((model_copy / "model.json").read_text())["files"]["generator.onnx"]
    with (model_copy / "generator.onnx").open("ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelError, match=r"generator.onnx has sha256 [0-9a-f]{64} but model.json records") as error:
        Model.load(model_copy)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / "discriminator.onnx").unlink(), "has no discriminator.onnx"),
        (lambda folder: (folder / "model.json").unlink(), "not a model folder"),
        (lambda folder: (folder / "model.json").write_text("{}"), "not a valid manifest"),
    ],
)
def test_incomplete_model_folders_are_refused(model_copy: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    damage(model_copy)
    with pytest.raises(ModelError, match=message):
        Model.load(model_copy)


def test_the_provider_in_use_is_read_back_from_the_session(tiny_model: Path) -> None:
    model = Model.load(tiny_model, device="auto")
    assert model.provider in {"CPUExecutionProvider", "CUDAExecutionProvider"}
    assert Model.load(tiny_model, device="cpu").provider == "CPUExecutionProvider"
    assert model.describe()["serving"]["provider"] == model.provider


def test_runs_queued_behind_the_concurrency_bound_give_the_same_muons(tiny_model: Path) -> None:
    """Many streams share one session; with one run at a time they wait their turn and results do not mix."""
    model = Settings(model_dir=tiny_model, inference_runs=1, inference_rows=512).load_model()
    assert model.describe()["serving"]["concurrent_runs"] == 1
    assert Model.load(tiny_model).concurrent_runs >= 1  # 0 means one per core
    rng = np.random.default_rng(3)
    inputs = [
        (
            rng.standard_normal((4000, model.manifest.noise_dim), dtype=np.float32),
            np.abs(rng.standard_normal((4000, 4), dtype=np.float32)),
            rng.choice(np.array([-1.0, 1.0], dtype=np.float32), (4000, 1)),
        )
        for _ in range(6)
    ]
    serial = [model.generate(*one) for one in inputs]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda one: model.generate(*one), inputs))
    for alone, shared in zip(serial, together, strict=True):
        np.testing.assert_array_equal(alone, shared)


def test_settings_come_from_env_and_options_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUONGAN_MAX_N", "123")
    monkeypatch.setenv("MUONGAN_MAX_CONCURRENT", "7")
    assert Settings().max_n == 123
    parser = argparse.ArgumentParser()
    command_serve.configure(parser)
    args = parser.parse_args(["--model", "somewhere", "--max-n", "5"])
    overrides = {name: value for name in Settings.model_fields if (value := getattr(args, name)) is not None}
    settings = Settings(**overrides)
    assert (settings.max_n, settings.max_concurrent, settings.model_dir) == (5, 7, Path("somewhere"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(model_dir: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "muongan.cli", "serve", "--model", str(model_dir), "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_refuses_to_start_on_a_tampered_model(model_copy: Path) -> None:
    with (model_copy / "discriminator.onnx").open("r+b") as file:
        file.write(b"X")
    process = _serve(model_copy, _free_port())
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "discriminator.onnx has sha256" in stderr and "re-export" in stderr


def test_serve_runs_the_service_on_the_given_port(tiny_model: Path) -> None:
    port = _free_port()
    process = _serve(tiny_model, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr
                time.sleep(0.2)
        assert ready.status_code == 200
        response = httpx.get(f"http://127.0.0.1:{port}/v1/muons", params={"n": 10, "format": "csv"}, timeout=30)
        assert response.status_code == 200 and len(response.text.splitlines()) == 11
    finally:
        process.terminate()
        process.wait(timeout=30)
