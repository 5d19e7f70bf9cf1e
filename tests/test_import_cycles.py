"""No import circle among minsky's modules (issue 16).

Every import counts — at module level or inside a function — except those under
`if TYPE_CHECKING:` (never executed) and imports of a package the importing module lives
in (always already being imported: `minsky.x` importing `minsky`)."""

from __future__ import annotations

import ast
from pathlib import Path

import minsky

ROOT = Path(minsky.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The minsky modules `path` imports (a from-import of a submodule counts it too)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return visit_all(node.orelse)
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    def visit_all(nodes: list[ast.stmt]) -> None:
        for n in nodes:
            visit(n)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    return {m for m in found if m in known and m != name and m not in ancestors}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imports(p, name, set(paths)) for name, p in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == 1:
                found.append([*stack[stack.index(v):], v])
            elif v not in state:
                walk(v)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            walk(u)
    return found


def test_the_walker_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_walker_sees_imports_inside_functions() -> None:
    edges = graph()
    assert "minsky.builtin" in edges["minsky.plugins"]  # manager() imports it lazily


def test_no_import_circle_in_minsky() -> None:
    assert cycles(graph()) == []
