"""The training package's architecture, held by its imports: layers import only downward, no cycles, small modules."""

from __future__ import annotations

import pytest
from import_graph import cycles, imports_of, longer_than, modules

# Bottom to top: a module may import from its own layer and the layers before it.
LAYERS = ("config", "reference", "parameterisation", "preparation", "model", "evaluation", "loop", "commands")
MAX_LINES = 400
MODULES = modules("training")


def layer_of(module: str) -> str:
    """``training.model.export`` -> ``model``; ``training.config`` -> ``config``."""
    return module.split(".")[1]


def test_every_module_sits_in_a_known_layer() -> None:
    strays = [name for name in MODULES if name != "training" and layer_of(name) not in LAYERS]
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name != "training"))
def test_imports_point_only_downward(name: str) -> None:
    """Lazy imports inside functions count too: the layer is the design, not what bites at import time."""
    own = LAYERS.index(layer_of(name))
    upward = [target for target in imports_of(name, MODULES) if LAYERS.index(layer_of(target)) > own]
    assert not upward, f"{name} (layer {LAYERS[own]}) imports from layers above it: {upward}"


def test_no_import_cycle() -> None:
    graph = {name: imports_of(name, MODULES) for name in MODULES}
    assert cycles(graph) == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles(graph))


def test_modules_stay_small() -> None:
    long = longer_than(MODULES, MAX_LINES)
    assert not long, f"modules over {MAX_LINES} lines: {long}"
