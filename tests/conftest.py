"""Shared, session-scoped fixtures: a tiny real Pythia sample and a tiny trained model folder.

Both are real (Pythia 8 through ``training.reference``, TensorFlow training, tf2onnx export), only
small: a few thousand muons and a few dozen steps, so that service tests have a genuine model folder
to load without anything in ``data/`` or ``models/`` being required.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

TINY_POT = 2000
TINY_SEED = 7
TINY_CONFIG = {
    "seed": TINY_SEED,
    "noise_dim": 8,
    "generator_hidden": [32, 32],
    "discriminator_hidden": [32, 32],
    "aux_head_hidden": [16],
    "batch_size": 128,
    "steps": 40,
    "aux_head_steps": 200,
    "ema_decay": 0.5,
    "eval_every": 20,
    "eval_size": 500,
    "checkpoint_every": 20,
    "holdout_fraction": 0.2,
    "calibration_muons": 20_000,
}


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Parquet sample of ~3,500 weighted muons from 2,000 protons on target (seeded)."""
    from service.samples import write_sample
    from training.reference.driver import generate

    path = tmp_path_factory.mktemp("sample") / "tiny.parquet"
    write_sample(generate(pot=TINY_POT, seed=TINY_SEED, progress=False), path)
    return path


@pytest.fixture(scope="session")
def tiny_painted_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sample's protons with FairShip's default beam spot painted on them (``muongan sample --beam-spot``)."""
    from muongan.cli import main

    path = tmp_path_factory.mktemp("painted_sample") / "tiny_painted.parquet"
    argv = ["sample", "--pot", str(TINY_POT), "--seed", str(TINY_SEED), "--beam-spot", "--out", str(path)]
    assert main([*argv, "--task-pot", str(TINY_POT), "--workers", "1"]) == 0
    return path


@pytest.fixture(scope="session")
def tiny_painted_model(tmp_path_factory: pytest.TempPathFactory, tiny_painted_sample: Path) -> Path:
    """A painted model folder: the tiny model's config trained on the painted tiny sample."""
    return _train_tiny(tmp_path_factory.mktemp("tiny_painted_model"), tiny_painted_sample)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_sample: Path) -> Path:
    """A model folder (generator.onnx, discriminator.onnx, model.json, report PNGs) trained for 40 steps."""
    return _train_tiny(tmp_path_factory.mktemp("tiny_model"), tiny_sample)


def _train_tiny(root: Path, sample: Path) -> Path:
    from muongan.cli import main

    config = root / "config.json"
    config.write_text(json.dumps(TINY_CONFIG))
    out = root / "tiny"
    argv = ["train", "--sample", str(sample), "--out", str(out), "--config", str(config)]
    assert main([*argv, "--workdir", str(root / "work")]) == 0
    return out


@pytest.fixture(scope="module")
def base_url(tiny_model: Path) -> Iterator[str]:
    """A real uvicorn server on the tiny model with the test limits, one per test module."""
    from test_service import Server

    with Server(tiny_model) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client
