"""The import graph of a package read from its source with ``ast`` (nothing is imported), for the layout tests.

A cycle hidden behind ``TYPE_CHECKING`` or a function-level import counts as well: it is the same knot in the
design, whether or not it bites at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    """Every module of a top-level package of the repository, by dotted name."""
    return {module_name(path): path for path in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, known: dict[str, Path]) -> set[str]:
    """The ``known`` modules ``name`` imports, each named as precisely as it can be: ``from a import b``
    depends on the module ``a.b`` when there is one (a sibling module), else on ``a`` (a name defined there)."""
    path = known[name]
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
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known and module != name}


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


def longer_than(known: dict[str, Path], max_lines: int) -> dict[str, int]:
    """The modules over ``max_lines`` lines, with their lengths."""
    return {name: n for name, path in known.items() if (n := len(path.read_text().splitlines())) > max_lines}
