"""The import graph of ``gridopt``: every arrow points down.

The graph is read from the source with :mod:`ast` (nothing is imported): an edge
``a -> b`` for every ``import gridopt.b`` / ``from gridopt.b import ...`` in module
``a``, at top level or inside a function (an import hidden in a function still makes
a cycle, it only moves the failure to run time). Imports under ``if TYPE_CHECKING:``
never run and are left out.

Two rules: the graph has no cycle, and no module but ``cli.py`` imports a gridopt
module inside a function (the command line loads each subcommand's stack on demand).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

import gridopt

PACKAGE = Path(gridopt.__file__).parent

#: Modules allowed to import gridopt modules inside functions.
LAZY_OK = frozenset({"gridopt.cli"})



@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    lazy: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The gridopt modules an import statement names (before resolving to known modules)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "gridopt"]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    if base.split(".")[0] != "gridopt":
        return []
    # ``from gridopt.x import y``: y may be a submodule or a name defined in x
    return [f"{base}.{a.name}" for a in node.names] + [base]


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _scan(name: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], list]:
    """The gridopt modules ``name`` imports, and (line, module) of those inside functions."""
    edges: set[str] = set()
    lazy: list[tuple[int, str]] = []
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found = _targets(child, name, is_package)
                if isinstance(child, ast.ImportFrom) and found:
                    # keep submodules that exist, else the module the names come from
                    subs = [t for t in found[:-1] if t in modules]
                    found = subs if len(subs) == len(found) - 1 else [found[-1]]
                for target in found:
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target == name or target not in modules:
                        continue
                    edges.add(target)
                    if in_function:
                        lazy.append((child.lineno, target))
                continue
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, in_function or inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False)
    return edges, lazy


@cache
def graph() -> Graph:
    modules = {
        _module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "_vendor" not in p.parts
    }
    g = Graph(modules=modules)
    for name, path in modules.items():
        g.edges[name], g.lazy[name] = _scan(name, path, modules)
    return g


def _cycles(g: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in g.modules:
        if root in index:
            continue
        work = [(root, iter(sorted(g.edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g.edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _modules() -> list[str]:
    return sorted(graph().modules)


@pytest.mark.parametrize("module", _modules())
def test_module_is_in_no_import_cycle(module):
    cycle = next((c for c in _cycles(graph()) if module in c), None)
    assert cycle is None, f"{module} is in the import cycle {' -> '.join(cycle)}"


@pytest.mark.parametrize("module", _modules())
def test_no_gridopt_import_inside_functions(module):
    if module in LAZY_OK:
        return
    lazy = graph().lazy[module]
    assert not lazy, (
        f"{module} imports gridopt modules inside functions (line: module): "
        + ", ".join(f"{line}: {target}" for line, target in lazy)
        + "; import them at the top, and break the cycle that made it necessary"
    )


def test_the_graph_sees_imports():
    """The checker itself: it finds the known top-level arrows and the cli's lazy ones."""
    g = graph()
    assert "gridopt.partition" in g.edges["gridopt.pipeline"]
    assert "gridopt.execution" in g.edges["gridopt.partition._divide"]
    assert "gridopt.pipeline" in g.edges["gridopt.city"]
    assert g.lazy["gridopt.cli"], "cli.py loads its subcommands lazily"
    toy = Graph(modules={"a": Path(), "b": Path(), "c": Path()})
    toy.edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert _cycles(toy) == [["a", "b", "c"]]
    toy.edges["c"] = set()
    assert _cycles(toy) == []
