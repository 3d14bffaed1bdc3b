"""The layout of ``service/``: no import cycle among its modules, none over 400 lines, routes in routers.

Read from the source (tests/import_graph.py), so a cycle behind ``TYPE_CHECKING`` or a function-level import
counts as well.
"""

from __future__ import annotations

import ast

from import_graph import cycles, imports_of, longer_than, modules

MAX_LINES = 400
MODULES = modules("service")


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_among_service_modules() -> None:
    graph = {name: imports_of(name, MODULES) for name in MODULES}
    assert cycles(graph) == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles(graph))


def test_the_engine_knows_nothing_of_the_http_layer() -> None:
    for name in MODULES:
        if name.startswith("service.engine"):
            assert not {module for module in imports_of(name, MODULES) if module.startswith("service.http")}, name


def test_no_service_module_is_over_400_lines() -> None:
    long = longer_than(MODULES, MAX_LINES)
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
