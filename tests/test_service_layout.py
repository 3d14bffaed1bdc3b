"""The layout of ``service/``: no import cycle among its modules, none over 400 lines, routes in routers.

Read from the source with ``ast`` (nothing is imported), so a cycle hidden behind ``TYPE_CHECKING`` or a
function-level import counts as well: it is the same knot in the design, whether or not it bites at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(SERVICE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The service modules ``name`` imports, each named as precisely as it can be: ``from a import b``
    depends on the module ``a.b`` when there is one (a sibling module), else on ``a`` (a name defined there)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected knot of ``graph`` (Tarjan's algorithm, then a path round it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    knots: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            knot = set()
            while True:
                member = stack.pop()
                knot.add(member)
                if member == node:
                    break
            if len(knot) > 1:
                knots.append(knot)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for knot in knots:
        first = min(knot)
        path, seen = [first], {first}
        while True:
            step = min(target for target in graph[path[-1]] if target in knot)
            if step in seen:
                found.append([*path[path.index(step) :], step])
                break
            path.append(step)
            seen.add(step)
    return found


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_among_service_modules() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    assert cycles(graph) == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles(graph))


def test_the_engine_knows_nothing_of_the_http_layer() -> None:
    for name in MODULES:
        if name.startswith("service.engine"):
            assert not {module for module in imports_of(name) if module.startswith("service.http")}, name


def test_no_service_module_is_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_routes_are_declared_on_routers_not_inside_a_factory() -> None:
    """Every route decorator sits on a module-level function of a router module, so the factory only assembles."""
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if inner is node or not isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for decorator in inner.decorator_list:
                    call = decorator.func if isinstance(decorator, ast.Call) else decorator
                    verb = call.attr if isinstance(call, ast.Attribute) else ""
                    assert verb not in {"get", "post", "put", "delete", "exception_handler"}, (
                        f"{name}: route {inner.name!r} is a closure inside {node.name!r}"
                    )
