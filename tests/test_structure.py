"""The package's shape (issue 30): a short top level, and one home for every public name.

A public name's home is the module that defines it: `obj.__module__` for a class or a
function, and for any other value the module that binds it other than by importing it.
A package that re-exports from its own private submodules (`minsky/pyrun/_x.py`) is
their home. Only the home lists a name in its `__all__`; `minsky/__init__.py`, the
public surface, is the one exception. No module is an alias of another: none sets
`sys.modules[...]`, and none is only imports and an `__all__`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
from pathlib import Path

import minsky

ROOT = Path(minsky.__file__).parent
# core modules at the top of src/minsky (subpackages do not count)
MAX_TOP_LEVEL = 18


def home_of(module: str) -> str:
    """`module`, or the package above its first private part (`minsky.pyrun._x` →
    `minsky.pyrun`): a private submodule's names live in the package that re-exports them."""
    parts = module.split(".")
    for n, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:n])
    return module


def modules() -> dict[str, types.ModuleType]:
    """Every minsky module, imported (`__main__` is not: importing it runs the command)."""
    found = {"minsky": minsky}
    for info in pkgutil.walk_packages(minsky.__path__, "minsky."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            found[info.name] = importlib.import_module(info.name)
    return found


def source_files() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def tree_of(module: types.ModuleType) -> ast.Module:
    return ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))


def imported_from(module: types.ModuleType) -> dict[str, str]:
    """Names bound in `module` by `from minsky… import name` (at any depth): name → the
    module it comes from."""
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    found: dict[str, str] = {}
    for node in ast.walk(tree_of(module)):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = node.module or ""
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*base, source] if source else base)
        if source == "minsky" or source.startswith("minsky."):
            for alias in node.names:
                found[alias.asname or alias.name] = source
    return found


def home_of_name(module: types.ModuleType, name: str) -> str | None:
    """Where `module.name` is defined (None for a module object: a package may list its
    submodules)."""
    value = getattr(module, name)
    if isinstance(value, types.ModuleType):
        return None
    if inspect.isclass(value) or inspect.isfunction(value):
        return home_of(value.__module__)
    source = imported_from(module).get(name)
    return home_of(source) if source else home_of(module.__name__)


def test_one_home_per_public_name() -> None:
    found = modules()
    listed: dict[str, set[str]] = {}  # name → the homes of the modules listing it
    problems: list[str] = []
    for name, module in sorted(found.items()):
        if name == "minsky":
            continue  # the public surface re-exports by design
        for public in getattr(module, "__all__", ()):
            listed.setdefault(public, set()).add(home_of(name))
            home = home_of_name(module, public)
            if home is not None and home != home_of(name):
                problems.append(f"{public}: in the __all__ of {name}, defined in {home}")
    for public, homes in sorted(listed.items()):
        if len(homes) > 1:
            problems.append(f"{public}: in the __all__ of {', '.join(sorted(homes))}")
    assert not problems, "public names with more than one home:\n" + "\n".join(problems)


def test_every_public_surface_name_has_a_home() -> None:
    for public in minsky.__all__:
        home = home_of_name(minsky, public)
        assert home and home != "minsky", public


def test_no_module_is_an_alias() -> None:
    problems = []
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        sets_modules = any(
            isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del)
            and ast.unparse(node.value) == "sys.modules"
            for node in ast.walk(tree))
        if sets_modules:
            problems.append(f"{path.relative_to(ROOT)}: sets sys.modules[...]")
        if path.name != "__init__.py" and only_imports(tree):
            problems.append(f"{path.relative_to(ROOT)}: only imports and re-exports")
    assert not problems, "alias modules:\n" + "\n".join(problems)


def only_imports(tree: ast.Module) -> bool:
    """Whether a module does nothing but import (and list what it imported)."""
    body = [node for node in tree.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    rest = [node for node in body if not isinstance(node, ast.Import | ast.ImportFrom)
            and "__all__" not in ast.unparse(node) and "sys.modules" not in ast.unparse(node)]
    return bool(imports) and not rest


def test_the_checks_see_aliases_and_re_exports() -> None:
    alias = ast.parse('"""Moved."""\nimport sys\nfrom minsky.evals import stats\n'
                      "sys.modules[__name__] = stats\n")
    assert only_imports(alias)
    assert not only_imports(ast.parse("from minsky.errors import MinskyError\nX = 1\n"))
    assert home_of("minsky.pyrun._checks") == "minsky.pyrun"
    assert home_of("minsky.__main__") == "minsky.__main__"
    from minsky import plugin_api

    assert home_of_name(plugin_api, "Account") == "minsky.account"  # imported, not defined


def test_top_level_is_short() -> None:
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} modules at the top of minsky: {top}"
