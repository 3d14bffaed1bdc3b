"""``muongan train``'s answers to a user's mistakes (one line, exit 2, before any work) and its model folder:
never replaced unless asked, and never seen half written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_CONFIG

from muongan.cli import main
from service.contract.manifest import Manifest

QUICK = {**TINY_CONFIG, "steps": 10, "eval_every": 10, "checkpoint_every": 10, "aux_head_steps": 20}


def _train(sample: Path, out: Path, *extra: str | Path) -> int:
    return main(["train", "--sample", str(sample), "--out", str(out), *map(str, extra)])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error


def test_a_missing_config_is_one_line_naming_it(
    tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent.json"
    assert _train(tiny_sample, tmp_path / "m", "--steps", "10", "--config", missing) == 2
    assert str(missing) in _one_line(capsys)
    assert not (tmp_path / "m").exists()


def test_an_unknown_key_names_the_closest_fields(
    tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"steps": 10, "learning_rat": 0.001}))
    assert _train(tiny_sample, tmp_path / "m", "--config", config) == 2
    error = _one_line(capsys)
    assert "'learning_rat'" in error and "generator_lr" in error and str(config) in error
    config.write_text(json.dumps({"steps": 10, "bacth_size": 64}))
    assert _train(tiny_sample, tmp_path / "m", "--config", config) == 2
    assert "did you mean batch_size?" in _one_line(capsys)


def test_bad_values_are_one_line_each(tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"steps": 0, "batch_size": "many", "calibrated_columns": ["q"]}))
    assert _train(tiny_sample, tmp_path / "m", "--config", config) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"muongan train: {config}: ") for line in lines), lines
    assert {line.split(": ")[2].split(" = ")[0] for line in lines} == {"steps", "batch_size", "calibrated_columns.0"}
    config.write_text('{"steps": 10,')
    assert _train(tiny_sample, tmp_path / "m", "--config", config) == 2
    assert "Invalid JSON" in _one_line(capsys)


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_a_non_positive_step_count_is_refused(
    tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: str
) -> None:
    assert _train(tiny_sample, tmp_path / "m", "--steps", steps) == 2
    assert f"--steps must be a positive number of generator updates, got {steps}" in _one_line(capsys)
    assert not (tmp_path / "m").exists() and not (tmp_path.parent / "runs").exists()


def test_an_existing_model_is_replaced_only_with_force(
    tiny_sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(QUICK))
    out = tmp_path / "models" / "m"  # its parent does not exist yet
    options: list[str | Path] = ["--config", config, "--no-report"]
    assert _train(tiny_sample, out, "--workdir", tmp_path / "w1", *options) == 0
    first = (out / "model.json").read_bytes()
    capsys.readouterr()
    (out / "stale.txt").write_text("from an older model")
    assert _train(tiny_sample, out, "--workdir", tmp_path / "w2", *options) == 2
    error = _one_line(capsys)
    assert f"--out {out} holds a model" in error and "--force" in error
    assert (out / "model.json").read_bytes() == first and not (tmp_path / "w2").exists()
    assert _train(tiny_sample, out, "--workdir", tmp_path / "w2", "--resume", *options) == 2
    assert "that " + str(tmp_path / "w2") + " did not export" in _one_line(capsys)
    assert _train(tiny_sample, out, "--workdir", tmp_path / "w2", "--force", *options) == 0
    capsys.readouterr()
    assert not (out / "stale.txt").exists()  # the folder is the new model, nothing of the old one
    assert sorted(path.name for path in out.parent.iterdir()) == ["m"]  # no staging folder left beside it
    assert _train(tiny_sample, out, "--workdir", tmp_path / "w2", "--resume", "--steps", "20", *options) == 0
    assert Manifest.load(out).hyperparameters["steps"] == 20  # --resume replaces the model its own run wrote


def test_an_interrupted_export_leaves_the_old_folder_and_no_partial_one(tmp_path: Path) -> None:
    from training.model.folder import staged_folder  # imports TensorFlow (training.model)

    target = tmp_path / "model"
    target.mkdir()
    (target / "model.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), staged_folder(target) as folder:
        (folder / "generator.onnx").write_bytes(b"half")
        raise KeyboardInterrupt
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    assert [path.name for path in target.iterdir()] == ["model.json"] and (target / "model.json").read_text() == "old"
    with staged_folder(target) as folder:
        (folder / "model.json").write_text("new")
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
    assert [path.name for path in target.iterdir()] == ["model.json"] and (target / "model.json").read_text() == "new"
