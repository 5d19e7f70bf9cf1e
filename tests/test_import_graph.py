"""No import circle among minsky's modules, even counting imports made for types only.

Every `import` and `from ... import` of a minsky module counts: at module level, inside a
function (`plugins.manager` imports the built-in plugin lazily), and under
`if TYPE_CHECKING:` too. A type-only circle costs nothing at run time, but it says two
modules each need the other to be understood; the seam that breaks it (a Protocol in
`plugin_api`, a helper moved to its right home) is the better design (issue 30).

How an import becomes an edge of the module graph:
- `import minsky.a.b` and `from minsky.a import b`, where `b` is a module, import the
  module `minsky.a.b`; `from minsky.a import name`, where `name` is not a module, imports
  `minsky.a` (for a package, its `__init__.py`);
- the packages above an imported module are not counted: Python runs `minsky/a/__init__.py`
  before `minsky.a.b`, but a package whose `__init__` gathers its submodules (`minsky.cli`
  registering commands) is then in a circle with each one that imports a sibling, a shape
  Python resolves by design (the package is in `sys.modules` before its `__init__` runs);
- relative imports are resolved against the importing module's package.
Imports by name at run time (`importlib.import_module("...")`) are not seen; minsky makes
none of its own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import minsky

ROOT = Path(minsky.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that `tree`, module `name`, imports as the rules above count
    them: anywhere in the tree, `if TYPE_CHECKING:` and function bodies included."""
    here = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                module = f"{base}.{alias.name}"
                found.add(module if module in known else base)
    return (found & known) - {name}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: edges(ast.parse(p.read_text(encoding="utf-8")), name,
                        p.name == "__init__.py", set(paths))
            for name, p in paths.items()}


def cycles(links: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each back edge of a depth-first walk (none: no circle)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(links[u]):
            if state.get(v) == 1:
                found.append([*stack[stack.index(v):], v])
            elif v not in state:
                walk(v)
        stack.pop()
        state[u] = 2

    for u in sorted(links):
        if u not in state:
            walk(u)
    return found


def test_the_walker_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_become_edges_as_documented() -> None:
    known = {"minsky", "minsky.a", "minsky.a.b", "minsky.a.c", "minsky.d", "minsky.e",
             "minsky.e.f", "minsky.g", "minsky.g.h"}
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "import minsky.g.h\n"
        "from minsky.a import b, thing\n"
        "from minsky.e import f\n"
        "if TYPE_CHECKING:\n"
        "    from minsky.d import Kind\n"
        "def late():\n"
        "    from . import c\n"
    )
    assert edges(tree, "minsky.a.x", False, known) == {
        "minsky.a", "minsky.a.b", "minsky.a.c", "minsky.d", "minsky.e.f", "minsky.g.h"}
    # in a package's __init__, `from . import f` is its own submodule
    assert edges(ast.parse("from . import f"), "minsky.e", True, known) == {"minsky.e.f"}


def test_the_graph_counts_type_only_and_function_local_imports() -> None:
    edges = graph()
    assert "minsky.builtin" in edges["minsky.plugins"]  # manager() imports it lazily
    # plugin_api's `if TYPE_CHECKING:` imports (the types its hooks name) count
    assert "minsky.organisations.base" in edges["minsky.plugin_api"]


def test_plugin_api_imports_nothing_above_it() -> None:
    """plugin_api's types for the runner and the society loader are Protocols: it imports
    neither the runner, nor the society module, nor the plugin registry."""
    above = {"minsky.runner", "minsky.society", "minsky.plugins", "minsky.builtin"}
    assert not graph()["minsky.plugin_api"] & above


def test_no_import_circle_in_minsky() -> None:
    found = cycles(graph())
    assert found == [], "import circles:\n" + "\n".join(" → ".join(c) for c in found)
