"""The store's modules form a layered graph: no module imports, even for type hints, one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit.store

PACKAGE = Path(toolkit.store.__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every ``toolkit.store`` module that ``path`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    known = {_module_name(p) for p in files}
    # the package's own __init__ re-exports the facade; its submodules never import it back
    return {_module_name(p): _imports(p, known) - {"toolkit.store"} for p in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_inside_the_store():
    graph = _graph()
    assert "toolkit.store.store" in graph and graph["toolkit.store.store"], "the facade was not found"
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle():
    # the check itself must be able to fail
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_audit_trail_knows_nothing_of_the_facade():
    graph = _graph()
    assert "toolkit.store.store" not in graph["toolkit.store.audit"]


def test_the_store_is_split_into_small_aggregate_modules():
    for name in ("subjects", "allocations", "deliveries", "photos", "measurements", "assessments", "safety",
                 "corrections", "blinding"):
        path = PACKAGE / f"{name}.py"
        assert path.is_file(), f"missing aggregate module {path}"
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert sizes["store.py"] < 200, sizes["store.py"]
