"""``muongan sample`` and ``evaluate`` refuse impossible numbers in one line before any work, and make the
folder they write into (the docs write into data/, which a fresh clone does not have)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from muongan.cli import main
from training.commands import sample


def test_sample_makes_the_folder_it_writes_into(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    sample.configure(parser)
    out = tmp_path / "data" / "reference.parquet"
    sample._check(parser.parse_args(["--pot", "10", "--seed", "1", "--out", str(out)]))
    assert out.parent.is_dir() and not out.exists()


def test_sample_refuses_a_folder_it_cannot_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    assert main(["sample", "--pot", "10", "--seed", "1", "--out", str(tmp_path / "data" / "x.parquet")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot make" in error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--pot", "10", "--seed", "-1"], "--seed must be 0 or more, got -1"),
        (["sample", "--pot", "0", "--seed", "1"], "--pot, --workers and --task-pot must be positive"),
        (["evaluate", "--model", "m", "--reference", "r", "--seed", "-1"], "--seed must be between 0 and"),
        (["evaluate", "--model", "m", "--reference", "r", "--seed", str(2**32)], "--seed must be between 0 and"),
        (["evaluate", "--model", "m", "--reference", "r", "--n", "0"], "--n must be at least 1000"),
        (["evaluate", "--model", "m", "--reference", "r", "--n-boosted", "-1"], "--n-boosted must be at least"),
        (["evaluate", "--model", "m", "--reference", "r", "--n-joint", "10"], "--n-joint must be at least 5000"),
    ],
)
def test_impossible_numbers_are_one_line_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not any(tmp_path.iterdir())
