"""The checker: a program's syntax tree is rejected before running unless every node is
in the allowlist; and the trimming of what small models write around a program."""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from collections.abc import Callable
from typing import Any

from minsky.pyrun._builtins import BUILTINS, MATH
from minsky.pyrun._limits import INT_LIMIT, MAX_CONST, MAX_DEPTH
from minsky.pyrun._values import _SCALARS, ProgramError

# The allowed operators and what they mean; the interpreter applies the same tables.
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_ORDER: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_ALLOWED = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Constant, ast.Name,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.If, ast.For, ast.While,
    ast.Break, ast.Continue, ast.Pass, ast.FunctionDef, ast.Return, ast.Call, ast.List,
    ast.Assert,
    ast.Tuple, ast.Subscript, ast.Slice, ast.JoinedStr, ast.FormattedValue, ast.Import,
    ast.ImportFrom, ast.alias, ast.arguments, ast.arg, ast.Attribute, ast.Load, ast.Store,
    ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Is,
    ast.IsNot, ast.In, ast.NotIn, *_BINOPS, *_ORDER,
)
_NAMES = {
    ast.Lambda: "lambda", ast.ClassDef: "class definitions", ast.Try: "try statements",
    ast.TryStar: "try statements", ast.With: "with statements", ast.Delete: "del",
    ast.Global: "global", ast.Nonlocal: "nonlocal", ast.ListComp: "list comprehensions",
    ast.GeneratorExp: "generator expressions", ast.Dict: "dicts", ast.Set: "sets",
    ast.NamedExpr: "the walrus operator", ast.Starred: "starred expressions",
    ast.keyword: "keyword arguments", ast.Match: "match statements",
}


def _is_docstring(stmt: ast.AST) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _is_append(stmt: ast.AST) -> bool:
    """`name.append(x)` as a statement: the one method call the program may make."""
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "append"
            and isinstance(stmt.value.func.value, ast.Name))


def _target_ok(t: ast.AST, subscript: bool) -> bool:
    if isinstance(t, ast.Name):
        return True
    if isinstance(t, ast.Tuple | ast.List):
        return all(_target_ok(e, False) for e in t.elts)
    return subscript and isinstance(t, ast.Subscript) and not isinstance(t.slice, ast.Slice)


def _problem(node: ast.AST, exempt: set[int]) -> str | None:
    """Why this node is not allowed, or None."""
    if not isinstance(node, _ALLOWED):
        return f"{_NAMES.get(type(node), type(node).__name__)} is not allowed"
    if isinstance(node, ast.Constant):
        v = node.value
        if type(v) not in _SCALARS:
            return f"constants of type {type(v).__name__} are not allowed"
        if type(v) is str and len(v) > MAX_CONST and id(node) not in exempt:
            return f"string constant longer than {MAX_CONST} characters"
        if type(v) is int and abs(v) >= INT_LIMIT:
            return "integer too large"
    elif isinstance(node, ast.Expr):
        if _is_append(node):  # the attribute below is allowed only in this form
            exempt.add(id(node.value.func))  # type: ignore[attr-defined]
        if _is_docstring(node):
            exempt.add(id(node.value))
    elif isinstance(node, ast.Name):
        if node.id.startswith("__") and node.id != "__name__":
            return f"the name {node.id} is not allowed"
    elif isinstance(node, ast.Attribute):
        if id(node) in exempt:
            return None
        if isinstance(node.value, ast.Name) and node.value.id == "math":
            return None if node.attr in MATH else f"math.{node.attr} is not available"
        return "attribute access is not allowed"
    elif isinstance(node, ast.Call):
        if node.keywords:
            return "keyword arguments are not allowed"
    elif isinstance(node, ast.Assign):
        if not all(_target_ok(t, True) for t in node.targets):
            return "can only assign to names, tuples of names and list items"
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        if not _target_ok(node.target, True) or isinstance(node.target, ast.Tuple | ast.List):
            return "can only assign to a name or a list item"
    elif isinstance(node, ast.For):
        if not _target_ok(node.target, False):
            return "a for loop can only assign to names"
    elif isinstance(node, ast.FunctionDef):
        a = node.args
        if node.decorator_list or getattr(node, "type_params", None):
            return "decorators and type parameters are not allowed"
        if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg:
            return "only plain positional parameters are allowed"
    elif isinstance(node, ast.FormattedValue):
        if node.conversion != -1 or node.format_spec is not None:
            return "f-string conversions (!r) and format specs ({x:...}) are not allowed"
    elif isinstance(node, ast.Import):
        if any(a.name != "math" or a.asname not in (None, "math") for a in node.names):
            return "only `import math` is allowed"
    elif isinstance(node, ast.ImportFrom) and (
            node.module != "math" or node.level or any(a.name == "*" for a in node.names)):
        return "only `from math import <name>` is allowed"
    return None


# An import binds nothing but math here, so dropping one is always safe: a program that
# uses what it imported fails by name. Small models import typing, numpy or sympy out of
# habit; a program that imports a module for reaching the system is refused outright.
SYSTEM_MODULES = frozenset({
    "os", "sys", "subprocess", "socket", "ctypes", "importlib", "builtins", "shutil",
    "pathlib", "pickle", "marshal", "gc", "inspect", "types", "code", "codeop", "runpy",
    "signal", "resource", "threading", "multiprocessing", "io", "posix", "pty", "asyncio",
})


def _system(name: str | None) -> bool:
    return (name or "").split(".")[0] in SYSTEM_MODULES


def _mentions_main(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node))


def _trim(tree: ast.Module, entry: str) -> None:
    """Drop what small models write around a program rather than in it: top-level
    imports of modules other than math and the system's (see SYSTEM_MODULES),
    and, once `entry` is defined, the top-level tests and demos (`print(solution())`,
    `assert solution() == 42`, `if __name__ == "__main__":`), whose guesses would
    otherwise fail a correct program. Only whole statements are dropped; what remains is
    checked as usual."""
    def foreign(s: ast.stmt) -> bool:
        if isinstance(s, ast.Import):
            return all(a.name != "math" and not _system(a.name) for a in s.names)
        return (isinstance(s, ast.ImportFrom) and s.module != "math" and not s.level
                and not _system(s.module))

    def chatter(s: ast.stmt) -> bool:
        return (isinstance(s, ast.Assert) or (isinstance(s, ast.Expr) and not _is_docstring(s))
                or (isinstance(s, ast.If) and _mentions_main(s.test)))

    functions = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}

    def known_calls(s: ast.stmt) -> bool:
        # dropped code must be code that could have run: a call of something neither
        # defined nor built in is kept, and fails by name as it would have
        # (a method call such as `data.append(5)` changes state: it is kept and runs)
        return all(not isinstance(n, ast.Call)
                   or (isinstance(n.func, ast.Name)
                       and (n.func.id in functions or n.func.id in BUILTINS))
                   for n in ast.walk(s))

    body: list[ast.stmt] = []
    defined = False
    for s in tree.body:
        if foreign(s):
            continue
        if defined and chatter(s) and known_calls(s):
            # dropped, yet held to the same rules: a forbidden construct anywhere in a
            # program rejects it, whether or not it would have run
            for part in ([s.test, *([s.msg] if s.msg else [])] if isinstance(s, ast.Assert)
                         else [s]):
                check(part)
            continue
        body.append(s)
        defined = defined or (isinstance(s, ast.FunctionDef) and s.name == entry
                              and len(s.args.args) == len(s.args.defaults))
    tree.body = body


def check(tree: ast.AST) -> None:
    """Reject the tree unless every node is allowed; iterative, so depth cannot overflow."""
    exempt: set[int] = set()
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 1)]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        if depth > MAX_DEPTH:
            raise ProgramError(f"the program is nested more than {MAX_DEPTH} deep", line)
        problem = _problem(node, exempt)
        if problem:
            raise ProgramError(problem, line)
        # Annotations are never evaluated, yet checked like the rest: nothing forbidden
        # may sit anywhere in a program.
        stack.extend((c, depth + 1, line) for c in reversed(list(ast.iter_child_nodes(node))))


def _check_brackets(source: str) -> None:
    """Reject brackets nested deeper than MAX_DEPTH: `((((1))))` makes no tree nodes."""
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in ("(", "[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ProgramError(f"brackets nested more than {MAX_DEPTH} deep", tok.start[0])
        elif tok.type == tokenize.OP and tok.string in (")", "]", "}"):
            depth -= 1
