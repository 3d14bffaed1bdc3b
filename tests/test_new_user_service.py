"""What a new user trips over on the service side (issue 25): RNTuple files, suffixes, format lists, signals, a
server that is down. Real files written and read by their libraries, a real server, real signals to a real process.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import httpx
import numpy as np
import pytest
import uproot

from muongan.cli import main
from service.http.uploads import UPLOAD_TYPES
from service.samples import Sample
from service.samples.root import TREE, fairship_branches, write

ROOT = Path(__file__).resolve().parents[1]


def plain_muons(client: httpx.Client, n: int = 40) -> np.ndarray:
    response = client.get("/v1/muons", params={"n": n, "seed": 11, "format": "npy"})
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def write_rntuple(path: Path, branches: dict[str, object]) -> None:
    """What uproot 5.7 writes when a dict is assigned to a file: an RNTuple, not a TTree."""
    with uproot.recreate(path) as file:
        file[TREE] = branches
    with uproot.open(path) as file:
        assert file.classname_of(TREE).endswith("RNTuple")


def enhanced(client: httpx.Client, body: bytes) -> httpx.Response:
    params = {"n": 30, "seed": 4, "format": "npy"}
    headers = {"content-type": "application/x-root"}
    return client.post("/v1/muons/enhanced", params=params, content=body, headers=headers)


def test_an_rntuple_of_seed_muons_is_read_like_the_ttree_it_copies(client: httpx.Client, tmp_path: Path) -> None:
    muons = plain_muons(client)
    write(Sample(muons, {}), tmp_path / "tree.root")
    write_rntuple(tmp_path / "ntuple.root", fairship_branches(muons))
    from_tree = enhanced(client, (tmp_path / "tree.root").read_bytes())
    from_ntuple = enhanced(client, (tmp_path / "ntuple.root").read_bytes())
    assert from_tree.status_code == from_ntuple.status_code == 200, from_ntuple.text
    assert from_ntuple.content == from_tree.content


def test_describe_reads_an_rntuple_and_says_it_is_one(
    client: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    muons = plain_muons(client)
    write_rntuple(tmp_path / "ntuple.root", fairship_branches(muons))
    assert main(["describe", "--json", str(tmp_path / "ntuple.root")]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["files"][0]["layout"] == "rntuple-11"
    assert found["files"][0]["muons"] == len(muons)


def test_an_rntuple_that_cannot_be_read_says_what_to_send_instead(
    client: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    branches: dict[str, object] = dict(fairship_branches(plain_muons(client, 3)))
    branches["x"] = ak.Array([[0.0], [1.0, 2.0], [], [3.0]])  # a list per entry: not a FairShip column
    path = tmp_path / "jagged.root"
    write_rntuple(path, branches)
    response = enhanced(client, path.read_bytes())
    assert response.status_code == 422
    detail = response.json()["detail"]
    for word in ("RNTuple", "'x'", "TTree", "muongan generate"):
        assert word in detail, detail
    assert main(["describe", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "RNTuple" in error and "TTree" in error, error


def test_an_untyped_body_is_told_each_format_and_media_type_once(client: httpx.Client) -> None:
    params = {"n": 5, "seed": 1}
    response = client.post("/v1/muons/enhanced", params=params, content=b"pdg,x,y\n13,1,2\n")
    assert response.status_code == 415
    detail = response.json()["detail"]
    named = re.findall(r"\b(npy|arrow|parquet|root) \(", detail)
    assert sorted(named) == sorted(set(UPLOAD_TYPES.values())), detail
    for media_type in UPLOAD_TYPES:
        assert detail.count(media_type) == 1, detail


def test_generate_lists_every_suffix_it_writes(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--model", str(tiny_model), "--n", "5", "--no-progress", "--out"]
    assert main([*argv, str(tmp_path / "x.hdf5")]) == 2
    error = capsys.readouterr().err
    suffixes = set(re.findall(r"\.[a-z]+\b", error.split("use one of", 1)[1]))
    assert {".csv", ".npy", ".parquet", ".arrow", ".root"} <= suffixes, error
    for suffix in sorted(suffixes):  # each one named is one that works
        assert main([*argv, str(tmp_path / f"x{suffix}")]) == 0, suffix


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_generate_stops_on_a_signal_with_one_line_and_no_partial_file(
    tiny_model: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    out = tmp_path / "big.npy"
    argv = ["generate", "--model", str(tiny_model), "--n", "1e9", "--out", str(out), "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, "-m", "muongan.cli", *argv], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    partial = out.with_name(out.name + ".part")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 1 << 20):
        assert process.poll() is None and time.monotonic() < deadline, "generation did not start"
        time.sleep(0.02)
    process.send_signal(signum)
    sent = time.monotonic()
    _, error = process.communicate(timeout=30)
    assert time.monotonic() - sent < 10  # 1 to 2.5 s on 2 idle cores; CI's are shared with image builds
    assert process.returncode == 128 + signum
    assert len(error.strip().splitlines()) == 1, error
    assert signum.name in error and str(out) in error, error
    assert os.listdir(tmp_path) == []


def test_generate_from_a_server_that_is_down_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    argv = ["generate", "--url", url, "--n", "5", "--out", str(tmp_path / "x.npy"), "--no-progress"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and url in error and "refused" in error, error
    assert os.listdir(tmp_path) == []
