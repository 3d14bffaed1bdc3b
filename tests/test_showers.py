"""Shower-aware errors of tail rates: taken over independent blocks, stratified by run, read from real files;
and ``muongan agree``, which compares independent runs with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from muongan.cli import main
from service.contract.muons import SampleError
from service.samples import Sample, write_sample
from training.evaluation.agreement import agreement
from training.evaluation.fom import features
from training.evaluation.showers import BLOCKS, BlockSums, block_sums, with_shower_errors
from training.evaluation.tails import passes, tail_cuts, tail_table

Z_FRONT = -7084.5


def _error_over_poisson(showers: int, muons_per_shower: int, runs: np.ndarray, seed: int) -> float:
    """Shower-aware over Poisson error of the rate above the 99th percentile of a shared depth, with
    ``showers`` showers per block (block ``i`` in run ``runs[i]``) of ``muons_per_shower`` unit-weight muons."""
    rng = np.random.default_rng(seed)
    depth = np.repeat(rng.exponential(size=(len(runs), showers)), muons_per_shower, axis=1)
    above = depth > np.log(100)  # P = 1%
    n = above.size
    sums = BlockSums(runs, np.full(len(runs), float(depth.shape[1])), above.sum(axis=1)[None, :].astype(float))
    return float(sums.rate_errors()[0] / (np.sqrt(above.sum()) / n))


def test_independent_muons_get_their_poisson_error() -> None:
    ratios = [_error_over_poisson(500, 1, np.array(["cascade"] * 400), seed) for seed in range(3)]
    assert np.median(ratios) == pytest.approx(1.0, abs=0.1)


def test_muons_that_share_a_shower_count_as_one() -> None:
    """Four muons per shower, one depth: the rate scatters as 1/4 as many draws, so its error doubles."""
    ratios = [_error_over_poisson(125, 4, np.array(["cascade"] * 400), seed) for seed in range(3)]
    assert np.median(ratios) == pytest.approx(2.0, abs=0.2)


def test_runs_of_different_kinds_do_not_inflate_the_error() -> None:
    """Half the blocks hold a kind whose rate is twenty times the other's: unstratified, the difference
    between kinds would read as scatter; stratified by run it does not."""
    runs = np.array(["cascade", "charm"] * 200)
    rng = np.random.default_rng(0)
    rate = np.where(runs == "charm", 0.1, 0.005)
    above = rng.binomial(1000, rate).astype(float)
    sums = BlockSums(runs, np.full(len(runs), 1000.0), above[None, :])
    poisson = np.sqrt(above.sum()) / (1000 * len(runs))
    binomial = np.sqrt(np.sum(1000 * rate * (1 - rate))) / (1000 * len(runs))  # the true error
    assert sums.rate_errors()[0] == pytest.approx(binomial, rel=0.1)
    assert poisson == pytest.approx(binomial, rel=0.1)
    pooled = BlockSums(np.array(["cascade"] * len(runs)), sums.weight, sums.above)
    assert pooled.rate_errors()[0] > 2 * binomial


def _file(path: Path, muons: np.ndarray, rows: list[int] | None) -> Path:
    metadata = {} if rows is None else {BLOCKS: json.dumps({"rows": rows, "run": ["cascade"] * len(rows)})}
    write_sample(Sample(muons, metadata), path)
    return path


def _muons(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = [
        rng.choice([-13.0, 13.0], n),
        *rng.normal(0, 2, (2, n)),
        Z_FRONT + rng.exponential(30, n),
        *rng.laplace(0, 0.4, (2, n)),
        10 + rng.exponential(20, n),
        rng.uniform(0.5, 1.0, n),
    ]
    return np.column_stack(columns).astype(np.float32)


def test_a_set_of_files_gives_the_tail_tables_rates_and_errors(tmp_path: Path) -> None:
    """Two Parquet files, read back in blocks: the rates are the tail table's on the whole set, and the
    errors of independent muons are their Poisson errors; the ratio's error is recomputed from them."""
    first, second = _muons(60_000, 1), _muons(40_000, 2)
    files = [_file(tmp_path / "a.parquet", first, [600] * 100), _file(tmp_path / "b.parquet", second, [400] * 100)]
    everything = np.concatenate([first, second])
    rows = tail_table(_muons(100_000, 3), everything, Z_FRONT)
    sums = block_sums(files, [row["conditions"] for row in rows], Z_FRONT)
    assert sums is not None and len(sums.weight) == 200
    np.testing.assert_allclose(sums.above.sum(axis=1) / sums.weight.sum(), [row["reference"]["rate"] for row in rows])
    updated, missing = with_shower_errors(rows, files, Z_FRONT)
    assert missing is None
    for row in updated:
        reference = row["reference"]
        if reference["n"] >= 100:
            assert reference["shower_error"] == pytest.approx(reference["error"], rel=0.35)
        if row["ratio_error"] is None:
            assert row["ratio_shower_error"] is None
        else:
            assert row["ratio_shower_error"] >= row["ratio"] * reference["shower_error"] / reference["rate"]


def test_files_without_blocks_are_said_so(tmp_path: Path) -> None:
    muons = _muons(5_000, 1)
    rows = tail_table(muons, muons, Z_FRONT)
    unchanged, missing = with_shower_errors(rows, [_file(tmp_path / "plain.parquet", muons, None)], Z_FRONT)
    assert unchanged == rows and missing is not None and BLOCKS in missing


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([100] * 49, "do not line up"),
        ([100] * 51, "5,000 rows, but its independent_blocks add up to 5,100"),
        ("[1, 2]", "is not rows and runs"),
    ],
)
def test_blocks_that_do_not_fit_the_file_are_refused(tmp_path: Path, blocks: list[int] | str, message: str) -> None:
    muons = _muons(5_000, 1)
    path = tmp_path / "bad.parquet"
    if isinstance(blocks, str):
        write_sample(Sample(muons, {BLOCKS: blocks}), path)
    else:
        _file(path, muons, blocks)
    with pytest.raises(SampleError, match=message):
        block_sums([path], [[("pt", 1.0)]], Z_FRONT)


def _runs(tmp_path: Path, deeper: float = 1.0) -> list[Path]:
    """Three runs of 150,000 muons in blocks of 600 (450 pooled muons above a 99.9% quantile: counted);
    the third run's depths stretched by ``deeper``."""
    paths = []
    for k in range(3):
        muons = _muons(150_000, 10 + k)
        if k == 2:
            muons[:, 3] = Z_FRONT + (muons[:, 3] - Z_FRONT) * deeper
        paths.append(_file(tmp_path / f"run{k}.parquet", muons, [600] * 250))
    return paths


def test_runs_of_one_source_agree_and_their_rates_are_the_pooled_cuts(tmp_path: Path) -> None:
    paths = _runs(tmp_path)
    result = agreement([[path] for path in paths])
    counted = [row for row in result["cuts"] if row["counts"]]
    assert [row["pooled_n"] >= 300 for row in result["cuts"]] == [row["counts"] for row in result["cuts"]]
    assert len(counted) == 5  # the 99.9% cuts and pT > 3 GeV/c; the 99.99% ones hold 45 pooled muons
    assert result["total"]["dof"] == 10 and result["total"]["p_value"] > 0.01
    for row in counted:
        assert np.average(row["ratios"], weights=1 / np.square(row["ratio_errors"])) == pytest.approx(1.0)
    everything = np.concatenate([_muons(150_000, 10 + k) for k in range(3)])
    assert [row["conditions"] for row in result["cuts"]] == [c for _, c in tail_cuts(everything, result["z_front"])]
    run = everything[:150_000]
    columns, weights = features(run, result["z_front"]), run[:, -1].astype(np.float64)
    for row in result["cuts"]:
        assert row["rates"][0] == pytest.approx(weights[passes(columns, row["conditions"])].sum() / weights.sum())


def test_a_run_that_goes_deeper_disagrees_in_depth_only(tmp_path: Path) -> None:
    result = agreement([[path] for path in _runs(tmp_path, deeper=1.3)])
    p_values = {row["cut"].split()[0]: row["p_value"] for row in result["cuts"] if row["counts"]}
    assert p_values["dz"] < 1e-6
    assert min(p_values["pt"], p_values["p"], p_values["r"]) > 1e-3


def test_agree_prints_the_table_and_refuses_what_it_cannot_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _runs(tmp_path)
    assert main(["agree", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "run 3 / mean" in out and "total over 5 cuts: chi2" in out
    plain = _file(tmp_path / "plain.parquet", _muons(5_000, 1), None)
    for argv, message in [
        ([paths[0]], "at least 2 runs"),
        ([paths[0], tmp_path / "run*.parquet"], "runs must not share files"),
        ([paths[0], plain], "does not record its independent_blocks"),
        ([paths[0], tmp_path / "none.parquet"], "none.parquet"),
    ]:
        assert main(["agree", *map(str, argv)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
