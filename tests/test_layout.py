"""The training package's architecture, held by its imports: layers import only downward, no cycles, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[1] / "training"

# Bottom to top: a module may import from its own layer and the layers before it.
LAYERS = ("config", "reference", "parameterisation", "preparation", "model", "evaluation", "loop", "commands")
MAX_LINES = 400


def layer_of(module: str) -> str:
    """``training.model.export`` -> ``model``; ``training.config`` -> ``config``."""
    return module.split(".")[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(TRAINING.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_training_modules(path: Path) -> set[str]:
    """Every ``training.*`` module a file imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "training":
                found.update(f"training.{alias.name}" for alias in node.names)
            elif node.module.startswith("training."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("training."))
    return found


MODULES = {module_name(path): path for path in sorted(TRAINING.rglob("*.py"))}


def test_every_module_sits_in_a_known_layer() -> None:
    strays = [name for name in MODULES if name != "training" and layer_of(name) not in LAYERS]
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name != "training"))
def test_imports_point_only_downward(name: str) -> None:
    own = LAYERS.index(layer_of(name))
    upward = [target for target in imported_training_modules(MODULES[name]) if LAYERS.index(layer_of(target)) > own]
    assert not upward, f"{name} (layer {LAYERS[own]}) imports from layers above it: {upward}"


def test_no_import_cycle() -> None:
    graph = {name: {t for t in imported_training_modules(path) if t in MODULES} for name, path in MODULES.items()}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        assert node not in visiting, f"import cycle: {' -> '.join([*trail, node])}"
        visiting.add(node)
        for target in sorted(graph[node]):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_modules_stay_small() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
