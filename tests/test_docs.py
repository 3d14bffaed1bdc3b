"""The user documents: one home per figure, the FairShip advice in the quick start, nothing it writes tracked.

The README's "What the default model is worth" table is the home of the shipped model's figures (issue 13
asks for them there, with their commands); every other figure lives in the sub-READMEs or bench/RESULTS.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
USAGE = (ROOT / "docs" / "USAGE.md").read_text()
# Figures that have their home in training/README.md, training/reference/README.md or bench/RESULTS.md.
COPIED_FIGURE = re.compile(
    r"\b0\.5\d\d\b|99\.9 ?%|\d[\d.e+]* ?(?:k?muons?/s)|peak RSS[^.\n]*\d+ ?[MG]B|below ~?\d+ ?cm|within \d+ m"
)


def prose(text: str) -> str:
    """The text outside code blocks (command outputs are recordings, not claims)."""
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def _default_models_figures(text: str) -> str:
    """The README section "What the default model is worth", up to the next section."""
    start = text.index("## What the default model is worth")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_and_usage_point_to_the_figures_instead_of_copying_them() -> None:
    for name, text in (("README.md", README.replace(_default_models_figures(README), "")), ("docs/USAGE.md", USAGE)):
        assert not COPIED_FIGURE.findall(prose(text)), (name, COPIED_FIGURE.findall(prose(text)))
    for home in ("training/README.md", "training/reference/README.md", "bench/RESULTS.md"):
        assert f"]({home})" in README, home


def test_the_default_models_table_is_that_of_the_shipped_model() -> None:
    """The README's table quotes the evaluation recorded in models/default/model.json, not an older one."""
    manifest = json.loads((ROOT / "models" / "default" / "model.json").read_text())
    evaluation = manifest["figures_of_merit"]["evaluation"]
    table = _default_models_figures(README)
    auc = evaluation["classifier_auc"]
    assert f"{auc['mean']:.4f} +- {auc['std']:.4f}" in table
    assert f"{evaluation['n_per_side']:,} a side" in table
    assert evaluation["generator_sha256"][:8] in table


def test_the_quick_start_gives_the_fairship_frame_and_the_beam_spot_advice() -> None:
    quick_start = README[README.index("## Five minutes") : README.index("## What the default model")]
    assert "z_m = (z_cm + 2084.5) / 100" in quick_start and "--z-offset-cm" in quick_start
    assert '<a id="beam-spot"></a>' in quick_start
    assert "--SmearBeam" in quick_start and "--PaintBeam" in quick_start
    assert "README.md#beam-spot" in USAGE  # the advice lives in one place


def test_what_the_quick_start_writes_is_ignored_by_git() -> None:
    texts = [README, USAGE, (ROOT / "service" / "README.md").read_text()]
    named = {name.strip("`.,):") for text in texts for name in re.findall(r"(?:--out|-o) (\S+)", text)}
    written = {name for name in named if "$" not in name}
    assert {"shard-0003.root", "kinematics.png", "plots", "boosted.parquet", "enhanced.npy"} <= written, written
    written |= {f"{name}.json" for name in written if name.endswith((".npy", ".csv"))}  # metadata sidecars
    written = {name if "." in name else f"{name}/kinematics.png" for name in written}  # folders: a file in them
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *sorted(written)], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert set(ignored) == written


def test_usage_shows_the_shipped_models_own_muons_and_they_are_physical() -> None:
    """docs/USAGE.md's outputs were recorded on models/default: its sha256 wherever one is shown, every muon shown
    goes forward with a positive weight (a stale test model's pz = -4.45 once sat beside "every muon is physical")."""
    manifest = json.loads((ROOT / "models" / "default" / "model.json").read_text())
    shown = re.findall(r"sha256[^0-9a-f]{1,5}([0-9a-f]{16,64})", USAGE)
    assert shown and all(manifest["files"]["generator.onnx"].startswith(sha) for sha in shown), shown
    outputs = "\n".join(re.findall(r"```console\n(.*?)```", USAGE, flags=re.DOTALL))
    rows = [line.split(",") for line in outputs.splitlines() if re.fullmatch(r"-?13,(?:[^,]+,){6}[^,]+", line)]
    assert len(rows) >= 15
    assert all(float(row[6]) > 0 and float(row[7]) > 0 for row in rows), [row for row in rows if float(row[6]) <= 0]
    assert all(float(pz) > 0 for pz in re.findall(r"'pz': (-?[\d.e+-]+)", outputs))


def test_usage_says_how_to_make_a_seeds_file_before_using_one() -> None:
    made = re.search(r"np\.save\(\"seeds\.npy\"|--out seeds\.npy", USAGE)
    used = USAGE.find("--seeds seeds.npy")
    assert made and 0 <= made.start() < used


def test_the_default_models_figures_open_with_plain_lines_and_their_terms() -> None:
    """Five plain lines a physicist can trust, and the terms they use defined, before the table."""
    section = _default_models_figures(README)
    before_table = section[: section.index("\n| figure")]
    assert len(re.findall(r"^- \*\*[^*]+\*\*", before_table, flags=re.MULTILINE)) == 5
    for term in ("AUC", "aux", "copula", "ESS", "FPD / KPD", "z - z_front"):
        assert f"**{term}**" in before_table, term
    assert "electromagnetic muon pairs" in before_table
