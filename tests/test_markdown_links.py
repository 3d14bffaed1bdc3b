"""Every document in the repository links only inside it, to files that exist: a clone is complete.

Markdown links and images, HTML ``href``/``src`` attributes, and paths written as code that climb out of
their folder (```../x```) are resolved from the file that names them; web addresses and in-page anchors
are left alone.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|(?:href|src)=\"([^\"]+)\"")
CODE_PATH = re.compile(r"`(\.\./[^`\s]+)`")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def documents() -> list[Path]:
    """The markdown files git tracks or would track (ignored folders such as .venv and runs/ left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(ROOT / name for name in listed if (ROOT / name).exists())


def targets(text: str) -> list[str]:
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # command outputs are recordings, not links
    links = [a or b for a, b in LINK.findall(prose)]
    return [link for link in links if not EXTERNAL.match(link)] + CODE_PATH.findall(prose)


def test_the_repository_has_its_documents() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in documents()}
    assert {"README.md", "docs/DESIGN.md", "docs/USAGE.md", "training/README.md"} <= names


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_links_resolve_inside_the_repository(document: Path) -> None:
    broken = []
    for target in targets(document.read_text()):
        path = (document.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)} links outside the repository or to nothing: {broken}"
