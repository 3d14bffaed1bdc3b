"""ROOT files are reproducible: equal muons and metadata give equal bytes, from a server or in-process, at any time."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import numpy as np
import uproot
from test_cli import muongan

from service.samples import Sample, read_sample, write_sample
from service.samples.reproducible import STAMP


def test_root_files_from_url_and_model_are_equal_bytes(tiny_model: Path, base_url: str, tmp_path: Path) -> None:
    options = ["--seed", "9", "--start", "65000", "--n", "1000", "--scale-pt", "2", "--no-progress"]
    for source, name in ((["--model", tiny_model], "local.root"), (["--url", base_url], "served.root")):
        done = muongan("generate", *source, *options, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
    local, served = (tmp_path / "local.root").read_bytes(), (tmp_path / "served.root").read_bytes()
    assert local == served
    np.testing.assert_array_equal(
        read_sample(tmp_path / "local.root").muons, read_sample(tmp_path / "served.root").muons
    )


def test_a_rewrite_seconds_later_is_identical_and_other_metadata_changes_the_uuid(tmp_path: Path) -> None:
    muons = np.array([[13, 0.5, -0.5, -7000, 0.1, -0.2, 20, 1]] * 5, np.float32)
    write_sample(Sample(muons, {"seed": "1"}), tmp_path / "a.root")
    time.sleep(1.1)  # TDatime has one-second resolution
    write_sample(Sample(muons, {"seed": "1"}), tmp_path / "b.root")
    write_sample(Sample(muons, {"seed": "2"}), tmp_path / "c.root")
    assert (tmp_path / "a.root").read_bytes() == (tmp_path / "b.root").read_bytes()
    with uproot.open(tmp_path / "a.root") as a, uproot.open(tmp_path / "c.root") as c:
        assert a.file.uuid != c.file.uuid
        assert a.created_on == STAMP


def test_uproot_writes_other_files_with_the_real_time(tmp_path: Path) -> None:
    with uproot.recreate(tmp_path / "user.root") as file:
        file["note"] = "a user's own file"
    with uproot.open(tmp_path / "user.root") as file:
        assert abs(file.created_on - datetime.datetime.now()) < datetime.timedelta(minutes=5)
