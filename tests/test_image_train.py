"""The training image, built with podman (`make image-train`), runs Pythia and TensorFlow inside.

`muongan sample --pot 2000` and `muongan train --steps 50` run in the container as its unprivileged user,
writing to a mounted folder; the sample and the model folder they leave are then read back here, on the host,
by the project's own readers, and the model generates muons in-process. Small sizes keep it to minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import TINY_CONFIG, TINY_POT, TINY_SEED
from test_image import built, podman

from service.samples import read_sample


def test_sample_and_train_inside_the_training_image(tmp_path: Path) -> None:
    image = built("image-train")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)  # the container runs as uid 10001
    (work / "config.json").write_text(json.dumps(TINY_CONFIG))

    def muongan(*args: str) -> None:
        podman("run", "--rm", "-v", f"{work}:/work", "--workdir", "/work", image, *args, timeout=900)

    muongan("sample", "--pot", str(TINY_POT), "--seed", str(TINY_SEED), "--out", "/work/sample.parquet")
    sample = read_sample(work / "sample.parquet")
    assert len(sample.muons) > 1000 and np.all(sample.muons[:, -1] > 0)  # weighted muons

    train = ["train", "--sample", "/work/sample.parquet", "--out", "/work/model", "--config", "/work/config.json"]
    muongan(*train, "--steps", "50", "--workdir", "/work/run")
    model = work / "model"
    assert {"generator.onnx", "discriminator.onnx", "model.json", "report_1d.png"} <= {p.name for p in model.iterdir()}
    assert json.loads((model / "model.json").read_text())["hyperparameters"]["steps"] == 50

    out = tmp_path / "muons.npy"
    argv = ["generate", "--model", str(model), "--n", "1000", "--seed", "1", "--out", str(out), "--no-progress"]
    result = subprocess.run([str(Path(sys.executable).parent / "muongan"), *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    muons = np.load(out)
    assert muons.shape == (1000, 8) and np.isfinite(muons).all()
