"""A real ``muongan train`` (a few steps, subprocess) prints no TensorFlow C++ start-up log on stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import TINY_CONFIG

MUONGAN = str(Path(sys.executable).parent / "muongan")
# absl/TSL log lines ("I0000 00:00:1796196993.934713   10395 port.cc:153] oneDNN ...") and their notices.
CPP_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|oneDNN|cpu_feature_guard|rebuild TensorFlow", re.M
)


def test_train_prints_no_tensorflow_cpp_logs(tiny_sample: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    steps = {"steps": 4, "aux_head_steps": 4, "eval_every": 2, "checkpoint_every": 2}
    config.write_text(json.dumps({**TINY_CONFIG, **steps}))
    argv = ["train", "--sample", tiny_sample, "--out", tmp_path / "model", "--config", config, "--no-report"]
    result = subprocess.run(
        [MUONGAN, *map(str, argv), "--workdir", str(tmp_path / "work")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model" / "generator.onnx").exists()
    assert not CPP_LOG.findall(result.stderr), result.stderr[-3000:]
