"""The README's quick start runs as printed: every shell command in its console blocks, against a real server.

The commands were recorded on ``models/default`` at ``127.0.0.1:8000``; here they run on the tiny model
at a free port (URL, model folder and ``.venv/bin`` substituted), in a scratch folder. Each must exit 0,
print something, and write the files it names; the CSV command must print its header and 10 rows.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RECORDED_URL = "http://127.0.0.1:8000"


def readme_commands() -> list[str]:
    """Shell commands of the README's ``console`` blocks (``$ `` lines, with their continuation lines)."""
    commands: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.DOTALL):
        command: list[str] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                command = [line[2:]]
                commands.append("")
            elif command is not None and (command[-1].endswith("\\") or _open_quote("\n".join(command))):
                command.append(line)
            else:
                command = None
            if command is not None:
                commands[-1] = "\n".join(command)
    return [command for command in commands if not command.startswith("make ")]


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return True
    return False


def test_the_readme_shows_the_quick_start_steps() -> None:
    commands = readme_commands()
    assert any("format=csv" in command and command.startswith("curl") for command in commands)
    assert any("pandas" in command or "read_pandas" in command for command in commands)
    assert any(".root" in command for command in commands)
    assert any("/v1/plot" in command or "muongan plot" in command for command in commands)
    assert "make serve" in README.read_text() and "make test" in README.read_text()


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_runs_as_printed(command: str, base_url: str, tiny_model: Path, tmp_path: Path) -> None:
    if command.startswith("curl") and shutil.which("curl") is None:
        pytest.skip("curl is not installed here")
    script = (
        command.replace(RECORDED_URL, base_url)
        .replace("models/default", str(tiny_model))
        .replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    )
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert done.stdout.strip(), f"{command} printed nothing"
    for written in re.findall(r"(?:--out|-o) (\S+)", command):
        assert (tmp_path / written).stat().st_size > 0, f"{command} did not write {written}"
    if "format=csv" in command:
        lines = done.stdout.strip().splitlines()
        assert lines[0] == "pdg,x,y,z,px,py,pz,weight" and len(lines) == 11
