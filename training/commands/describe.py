"""``muongan describe PATH... [--json]``: a physicist's first look at a production before training.

Streams every file once (bounded memory, no TensorFlow): the layout found in each file, muons and
skipped non-muon rows by id, sums of weights, ``muons_per_pot`` where the files carry it, the mu+
fraction, and per canonical column (cm, GeV/c) the range and weighted 0.1%, 50% and 99.9% quantiles.
The quantiles are estimated on a seeded uniform subsample of 2^20 rows; ranges and sums are exact.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from muongan.errors import UserError
from service.contract.muons import SampleError
from service.samples.sets import expand
from service.samples.survey import Survey, survey

SUBSAMPLE = 1 << 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="sample files, folders or quoted glob patterns")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the quantile subsample (default %(default)s)")


def summary(found: Survey) -> dict[str, Any]:
    """The JSON object ``describe --json`` prints."""
    pot = found.pot_from_metadata()
    sum_weights = found.sum_weights
    return {
        "files": [
            {
                "path": str(f.path),
                "layout": f.layout,
                "muons": f.muons,
                "skipped_rows": _by_id(f.skipped),
                "sum_weights": f.sum_weights,
                "muons_per_pot": f.muons_per_pot,
            }
            for f in found.files
        ],
        "muons": found.muons,
        "skipped_rows": _by_id(found.skipped),
        "sum_weights": sum_weights,
        "pot": pot,
        "muons_per_pot": sum_weights / pot if pot else None,
        "mu_plus_fraction": found.sum_mu_plus / sum_weights if sum_weights else None,
        "columns": found.quantiles(),
        "quantile_subsample": len(found.reservoir.rows),
    }


def _by_id(skipped: dict[int, int]) -> dict[str, int]:
    return {str(pdg): count for pdg, count in sorted(skipped.items())}


def _table(result: dict[str, Any]) -> str:
    names = [Path(f["path"]).name for f in result["files"]]
    width = max(len(name) for name in [*names, "file"])
    header = f"{'file':<{width}} {'layout':<13} {'muons':>12} {'skipped':>9} {'sum of weights':>15} {'muons/POT':>10}"
    lines = [header]
    for name, f in zip(names, result["files"], strict=True):
        per_pot = f"{f['muons_per_pot']:.4g}" if f["muons_per_pot"] else "-"
        skipped = sum(f["skipped_rows"].values())
        counts = f"{f['muons']:>12,} {skipped:>9,} {f['sum_weights']:>15.6g}"
        lines.append(f"{name:<{width}} {f['layout']:<13} {counts} {per_pot:>10}")
    per_pot = (
        f"{result['muons_per_pot']:.6g} ({result['pot']:.6g} POT)"
        if result["muons_per_pot"]
        else "unknown (not every file carries it: train with --pot N)"
    )
    mu_plus = result["mu_plus_fraction"]
    lines += [
        "",
        f"files {len(result['files'])}, muons {result['muons']:,}, sum of weights {result['sum_weights']:.6g}",
        f"skipped rows by id: {result['skipped_rows'] or 'none'}",
        f"muons_per_pot: {per_pot}; mu+ fraction (weighted): {mu_plus:.4f}" if mu_plus is not None else "no muons",
        "",
        f"{'column':<7} {'min':>12} {'q0.001':>12} {'median':>12} {'q0.999':>12} {'max':>12}",
    ]
    for name, stats in result["columns"].items():
        cells = [stats.get(key) for key in ("min", "q0.001", "q0.5", "q0.999", "max")]
        lines.append(f"{name:<7} " + " ".join(f"{v:>12.5g}" if v is not None else f"{'':>12}" for v in cells))
    lines.append(f"(weighted quantiles estimated on {result['quantile_subsample']:,} muons drawn at random)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        found = survey(expand(args.paths), args.seed, SUBSAMPLE)
    except SampleError as error:
        raise UserError(str(error)) from None
    result = summary(found)
    print(json.dumps(result, indent=1) if args.json else _table(result))
    return 0
