"""minsky's own interpreter for a small, safe subset of Python (Program-of-Thought / PAL).

A small model solves a math word problem by writing a short program (`def solution(): ...`)
and minsky runs it to get the answer. The program text is untrusted, so it never reaches
CPython's exec, eval or compile: `ast.parse` turns it into a tree, a checker walks the whole
tree against an allowlist of node types and forms before anything runs, and an evaluator of
our own runs the tree. Program values are only numbers, bools, None, short strings, lists
and tuples of these, and the interpreter's own function objects; no real Python object,
attribute, frame, class or module ever reaches the program. The only attributes are
`math.<name>` from our own table and `lst.append(x)` as a statement.

Everything is bounded: source length, tree depth, steps (node evaluations), call depth,
integer size (checked before a power is computed, so `9**9**9**9` fails at once), lengths
of strings, lists, ranges and printed output, and the nesting of values. Any failure is a
ProgramResult with ok=False and a one-line error; run_program never raises.

`run_program_guarded` (and its async twin `run_program_isolated`) is the second layer: the
same interpreter in a worker process (`python -I -m minsky.pyrun`, kept for many programs)
with rlimits on memory and CPU time and a wall-clock timeout after which the worker is
killed and replaced. The `consensus` organisation and the `Python` tool run programs there.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import io
import json
import math
import operator
import re
import select
import subprocess
import sys
import textwrap
import threading
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from minsky.tools.base import Tool, ToolError
from minsky.tools.calculator import format_number

MAX_SOURCE = 5_000  # characters of program text
MAX_DEPTH = 60  # nesting of the syntax tree
MAX_STEPS = 100_000  # node evaluations; heavy builtins pay one per COPY_COST elements
MAX_CALLS = 50  # nested calls of the program's own functions
INT_LIMIT = 10**40  # every int stays strictly inside ±INT_LIMIT
MAX_EXPONENT = 64
MAX_POWER_BITS = 256  # a bound on a power's size before computing it; the exact check follows
MAX_CONST = 1_000  # characters of a string literal
MAX_STR = 10_000
MAX_LIST = 100_000
MAX_RANGE = 1_000_000
MAX_OUTPUT = 100_000  # characters printed
MAX_NEST = 20  # values inside values; also stops a list that contains itself
COPY_COST = 10  # elements copied or compared per step
MAX_SENT = 10_000  # elements of a value the worker sends back
MAX_REPLY = 1_000_000  # characters of one reply line from the worker
WORKER_RUNS = 500  # programs one worker process runs before it is replaced
WORKER_CPU_S = 120  # CPU seconds a worker may use in all: a backstop, never reached normally
STARTUP_TIMEOUT_S = 60.0  # for the worker process to start, apart from the program's time

Value = Any  # int | float | bool | str | None | list | tuple | Range | Function | Builtin
_SCALARS = (int, float, bool, str, type(None))
_NUMS = (int, float, bool)


@dataclass(frozen=True)
class ProgramResult:
    """What a program did: its value, what it printed, and a one-line error if it failed."""

    ok: bool
    value: Value
    output: str
    error: str | None


class ProgramError(Exception):
    """The program was rejected or failed; `line` is added by the innermost statement."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: Value) -> None:
        self.value = value


class Scope:
    """Variables of the module or of one call; reads fall back to the defining scope."""

    __slots__ = ("vars", "parent")

    def __init__(self, parent: Scope | None) -> None:
        self.vars: dict[str, Value] = {}
        self.parent = parent


@dataclass(eq=False)
class Function:
    """A function the program defined with `def`."""

    name: str
    params: tuple[str, ...]
    defaults: tuple[Value, ...]
    body: list[ast.stmt] = field(repr=False)
    scope: Scope = field(repr=False)


@dataclass(frozen=True, eq=False)
class Builtin:
    """A function of the interpreter's own, from BUILTINS or MATH."""

    name: str
    fn: Callable[[Interpreter, list[Value]], Value] = field(repr=False)


@dataclass(frozen=True, eq=False)
class Range:
    """The program's range(): bounded, iterated lazily."""

    r: range


# --- the checker: everything is rejected before running unless listed here -------------

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


# --- the evaluator ---------------------------------------------------------------------

def _type(v: Value) -> str:
    return type(v).__name__.lower()


def _is_int(v: Value) -> bool:
    return type(v) in (int, bool)


def _is_num(v: Value) -> bool:
    return type(v) in _NUMS


def _power(a: Value, b: Value) -> Value:
    # Refuse before computing: a**b with a huge exponent would take forever and all memory.
    if (_is_int(a) and _is_int(b) and b > 0 and abs(a) > 1
            and (b > MAX_EXPONENT or abs(a).bit_length() * b > MAX_POWER_BITS)):
        raise ProgramError("integer too large")
    return a**b


def _checked(v: Value) -> Value:
    t = type(v)
    if t is int and not -INT_LIMIT < v < INT_LIMIT:
        raise ProgramError("integer too large")
    if t is float and not math.isfinite(v):
        raise ProgramError("result is not a finite number")
    if t is tuple:
        for x in v:
            _checked(x)
    elif t not in (*_SCALARS, list, Range, Function, Builtin):
        raise ProgramError(f"values of type {_type(v)} are not supported")
    return v


def _arity(name: str, args: list[Value], lo: int, hi: int) -> None:
    if not lo <= len(args) <= hi:
        raise ProgramError(f"{name}() takes {lo} to {hi} arguments, not {len(args)}")


class Interpreter:
    """Runs a checked tree; counts steps, output and nested calls."""

    def __init__(self, max_steps: int) -> None:
        self.steps, self.max_steps, self.calls = 0, max_steps, 0
        self.out: list[str] = []
        self.out_len = 0
        self.last: Value = None
        self.globals = Scope(None)
        self.globals.vars["__name__"] = "__main__"  # for `if __name__ == "__main__":`

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise ProgramError("step limit exceeded")

    def run(self, tree: ast.Module, entry: str) -> Value:
        last = None
        for stmt in tree.body:
            try:
                self.execute(stmt, self.globals)
            except (_Break, _Continue):
                raise ProgramError("'break' or 'continue' outside a loop", stmt.lineno) from None
            except _Return:
                raise ProgramError("'return' outside a function", stmt.lineno) from None
            if isinstance(stmt, ast.Expr) and not _is_docstring(stmt):
                last = self.last
        fn = self.globals.vars.get(entry)
        if isinstance(fn, Function) and len(fn.params) == len(fn.defaults):
            return self.call(fn, [])
        return last

    # statements

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.execute(stmt, scope)

    def execute(self, stmt: ast.stmt, scope: Scope) -> None:
        self.tick()
        try:
            handler = _STMTS.get(type(stmt))
            if handler is None:
                raise ProgramError(f"{type(stmt).__name__} is not allowed")
            handler(self, stmt, scope)
        except ProgramError as e:
            e.line = e.line or stmt.lineno
            raise
        except ZeroDivisionError:
            raise ProgramError("division by zero", stmt.lineno) from None
        except OverflowError:
            raise ProgramError("number too large", stmt.lineno) from None
        except (ArithmeticError, TypeError, ValueError, IndexError) as e:
            raise ProgramError(f"{type(e).__name__}: {e}", stmt.lineno) from None

    def s_expr(self, s: ast.Expr, scope: Scope) -> None:
        if _is_append(s):
            call = s.value
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            target = self.evaluate(call.func.value, scope)
            if type(target) is not list or len(call.args) != 1:
                raise ProgramError(".append(x) works only on a list, with one argument")
            item = self.evaluate(call.args[0], scope)
            if len(target) >= MAX_LIST:
                raise ProgramError("list too long")
            target.append(item)
            self.last = None
        else:
            self.last = self.evaluate(s.value, scope)

    def s_assign(self, s: ast.Assign, scope: Scope) -> None:
        value = self.evaluate(s.value, scope)
        for t in s.targets:
            self.assign(t, value, scope)

    def s_annassign(self, s: ast.AnnAssign, scope: Scope) -> None:
        if s.value is not None:
            self.assign(s.target, self.evaluate(s.value, scope), scope)

    def s_augassign(self, s: ast.AugAssign, scope: Scope) -> None:
        t = s.target
        if isinstance(t, ast.Name):
            old = self.lookup(t.id, scope)
            scope.vars[t.id] = self.binop(s.op, old, self.evaluate(s.value, scope), inplace=True)
        elif isinstance(t, ast.Subscript):
            box, index = self.evaluate(t.value, scope), self.evaluate(t.slice, scope)
            new = self.binop(s.op, self.getitem(box, index), self.evaluate(s.value, scope))
            self.setitem(box, index, new)

    def assign(self, t: ast.expr, value: Value, scope: Scope) -> None:
        if isinstance(t, ast.Name):
            scope.vars[t.id] = value
        elif isinstance(t, ast.Tuple | ast.List):
            items = self.items(value)
            if len(items) != len(t.elts):
                raise ProgramError(f"cannot unpack {len(items)} values into {len(t.elts)}")
            for sub, item in zip(t.elts, items, strict=True):
                self.assign(sub, item, scope)
        elif isinstance(t, ast.Subscript):
            self.setitem(self.evaluate(t.value, scope), self.evaluate(t.slice, scope), value)

    def s_if(self, s: ast.If, scope: Scope) -> None:
        self.exec_block(s.body if self.truth(self.evaluate(s.test, scope)) else s.orelse, scope)

    def loop_body(self, body: list[ast.stmt], scope: Scope) -> bool:
        """One pass of a loop's body; False when it breaks out of the loop."""
        try:
            self.exec_block(body, scope)
        except _Break:
            return False
        except _Continue:
            pass
        return True

    def s_for(self, s: ast.For, scope: Scope) -> None:
        for item in self.iterate(self.evaluate(s.iter, scope)):
            self.tick()
            self.assign(s.target, item, scope)
            if not self.loop_body(s.body, scope):
                break
        else:
            self.exec_block(s.orelse, scope)

    def s_while(self, s: ast.While, scope: Scope) -> None:
        while self.truth(self.evaluate(s.test, scope)):
            if not self.loop_body(s.body, scope):
                break
        else:
            self.exec_block(s.orelse, scope)

    def s_break(self, s: ast.Break, scope: Scope) -> None:
        raise _Break

    def s_continue(self, s: ast.Continue, scope: Scope) -> None:
        raise _Continue

    def s_pass(self, s: ast.stmt, scope: Scope) -> None:
        pass  # also `import math`, checked already: math is always there

    def s_assert(self, s: ast.Assert, scope: Scope) -> None:
        # the message is never evaluated: a failed assertion is just a failed program
        if not self.truth(self.evaluate(s.test, scope)):
            raise ProgramError("assertion failed")

    def s_return(self, s: ast.Return, scope: Scope) -> None:
        raise _Return(None if s.value is None else self.evaluate(s.value, scope))

    def s_def(self, s: ast.FunctionDef, scope: Scope) -> None:
        defaults = tuple(self.evaluate(d, scope) for d in s.args.defaults)
        params = tuple(a.arg for a in s.args.args)
        scope.vars[s.name] = Function(s.name, params, defaults, s.body, scope)

    def s_importfrom(self, s: ast.ImportFrom, scope: Scope) -> None:
        for a in s.names:
            if a.name in MATH:  # math's other names bind nothing here: a use fails by name
                scope.vars[a.asname or a.name] = MATH[a.name]

    # expressions

    def evaluate(self, node: ast.expr, scope: Scope) -> Value:
        self.tick()
        handler = _EXPRS.get(type(node))
        if handler is None:
            raise ProgramError(f"{type(node).__name__} is not allowed")
        return handler(self, node, scope)

    def lookup(self, name: str, scope: Scope) -> Value:
        s: Scope | None = scope
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
        if name in BUILTINS:
            return BUILTINS[name]
        if name == "math":
            raise ProgramError("math can only be used as math.<name>")
        raise ProgramError(f"name {name!r} is not defined")

    def e_constant(self, node: ast.Constant, scope: Scope) -> Value:
        return node.value

    def e_name(self, node: ast.Name, scope: Scope) -> Value:
        return self.lookup(node.id, scope)

    def e_attribute(self, node: ast.Attribute, scope: Scope) -> Value:
        if isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in MATH:
            return MATH[node.attr]
        raise ProgramError("attribute access is not allowed")

    def e_binop(self, node: ast.BinOp, scope: Scope) -> Value:
        left = self.evaluate(node.left, scope)
        return self.binop(node.op, left, self.evaluate(node.right, scope))

    def e_unaryop(self, node: ast.UnaryOp, scope: Scope) -> Value:
        v = self.evaluate(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not self.truth(v)
        if not _is_num(v):
            raise ProgramError(f"bad operand type for unary minus or plus: {_type(v)}")
        return _checked(-v if isinstance(node.op, ast.USub) else +v)

    def e_boolop(self, node: ast.BoolOp, scope: Scope) -> Value:
        want = isinstance(node.op, ast.Or)
        v = None
        for sub in node.values:
            v = self.evaluate(sub, scope)
            if self.truth(v) == want:
                return v
        return v

    def e_compare(self, node: ast.Compare, scope: Scope) -> Value:
        left = self.evaluate(node.left, scope)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.evaluate(comp, scope)
            if not self.compare(op, left, right):
                return False
            left = right
        return True

    def e_ifexp(self, node: ast.IfExp, scope: Scope) -> Value:
        test = self.truth(self.evaluate(node.test, scope))
        return self.evaluate(node.body if test else node.orelse, scope)

    def e_call(self, node: ast.Call, scope: Scope) -> Value:
        fn = self.evaluate(node.func, scope)
        return self.call(fn, [self.evaluate(a, scope) for a in node.args])

    def e_list(self, node: ast.List, scope: Scope) -> Value:
        return [self.evaluate(e, scope) for e in node.elts]

    def e_tuple(self, node: ast.Tuple, scope: Scope) -> Value:
        return tuple(self.evaluate(e, scope) for e in node.elts)

    def e_subscript(self, node: ast.Subscript, scope: Scope) -> Value:
        box, sl = self.evaluate(node.value, scope), node.slice
        if not isinstance(sl, ast.Slice):
            return self.getitem(box, self.evaluate(sl, scope))
        parts = (sl.lower, sl.upper, sl.step)
        bounds = [b if b is None else self.evaluate(b, scope) for b in parts]
        if not all(b is None or _is_int(b) for b in bounds):
            raise ProgramError("slice bounds must be integers")
        if type(box) is Range:
            return Range(box.r[slice(*bounds)])
        if type(box) not in (list, tuple, str):
            raise ProgramError(f"cannot slice a {_type(box)}")
        part = box[slice(*bounds)]
        self.tick(1 + len(part) // COPY_COST)
        return part

    def e_joinedstr(self, node: ast.JoinedStr, scope: Scope) -> Value:
        parts: list[str] = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                parts.append(self.show(self.evaluate(v.value, scope)))
            elif isinstance(v, ast.Constant) and type(v.value) is str:
                parts.append(v.value)
        text = "".join(parts)
        if len(text) > MAX_STR:
            raise ProgramError("string too long")
        self.tick(len(text) // COPY_COST)  # building a string costs its length
        return text

    # operations on values

    def call(self, fn: Value, args: list[Value]) -> Value:
        if isinstance(fn, Builtin):
            return _checked(fn.fn(self, args))
        if not isinstance(fn, Function):
            raise ProgramError(f"a {_type(fn)} is not callable")
        first_default = len(fn.params) - len(fn.defaults)
        if not first_default <= len(args) <= len(fn.params):
            raise ProgramError(f"{fn.name}() takes {len(fn.params)} arguments, not {len(args)}")
        if self.calls >= MAX_CALLS:
            raise ProgramError(f"too many nested calls (more than {MAX_CALLS})")
        local = Scope(fn.scope)
        for i, name in enumerate(fn.params):
            local.vars[name] = args[i] if i < len(args) else fn.defaults[i - first_default]
        self.calls += 1
        try:
            self.exec_block(fn.body, local)
        except _Return as r:
            return r.value
        except (_Break, _Continue):
            raise ProgramError("'break' or 'continue' outside a loop") from None
        finally:
            self.calls -= 1
        return None

    def sized(self, n: int, like: Value) -> None:
        """Refuse a string or list of n elements before making it; charge for copying."""
        if n > (MAX_STR if type(like) is str else MAX_LIST):
            raise ProgramError("string too long" if type(like) is str else "list too long")
        self.tick(1 + n // COPY_COST)

    def binop(self, op: ast.operator, a: Value, b: Value, inplace: bool = False) -> Value:
        kind = type(op)
        if _is_num(a) and _is_num(b):
            return _checked(_power(a, b) if kind is ast.Pow else _BINOPS[kind](a, b))
        if kind is ast.Add and type(a) is type(b) and type(a) in (str, list, tuple):
            self.sized(len(a) + len(b), a)
            if inplace and type(a) is list:
                a.extend(b)  # `lst += [x]` changes the list in place, as in Python
                return a
            return a + b
        if kind is ast.Mult:
            seq, n = (a, b) if _is_int(b) else (b, a)
            if type(seq) in (str, list, tuple) and _is_int(n):
                self.sized(len(seq) * max(n, 0), seq)
                return seq * n
        raise ProgramError(f"unsupported operand types for {kind.__name__}: "
                           f"{_type(a)} and {_type(b)}")

    def getitem(self, box: Value, index: Value) -> Value:
        if not _is_int(index):
            raise ProgramError("indices must be integers")
        if type(box) in (list, tuple, str):
            return box[index]
        if type(box) is Range:
            return box.r[index]
        raise ProgramError(f"a {_type(box)} cannot be indexed")

    def setitem(self, box: Value, index: Value, value: Value) -> None:
        if type(box) is not list or not _is_int(index):
            raise ProgramError("can only assign to a list item with an integer index")
        box[index] = value

    def truth(self, v: Value) -> bool:
        if type(v) in (list, tuple, str):
            return len(v) > 0
        if type(v) is Range:
            return len(v.r) > 0
        return type(v) not in _SCALARS or bool(v)

    def iterate(self, v: Value) -> Iterator[Value]:
        if type(v) in (list, tuple, str):
            return iter(v)
        if type(v) is Range:
            return iter(v.r)
        raise ProgramError(f"a {_type(v)} is not iterable")

    def items(self, v: Value) -> list[Value]:
        """A copy of an iterable's elements, bounded and paid for."""
        n = len(v.r) if type(v) is Range else len(v) if type(v) in (list, tuple, str) else -1
        if n < 0:
            raise ProgramError(f"a {_type(v)} is not iterable")
        self.sized(n, [])
        return list(self.iterate(v))

    def eq(self, a: Value, b: Value, depth: int = 0) -> bool:
        ta, tb = type(a), type(b)
        if ta in (list, tuple) or tb in (list, tuple):
            if ta is not tb or len(a) != len(b):
                return False
            if depth >= MAX_NEST:
                raise ProgramError("values nested too deeply")
            self.tick(1 + len(a) // COPY_COST)
            return all(self.eq(x, y, depth + 1) for x, y in zip(a, b, strict=True))
        if ta is Range or tb is Range:
            return bool(ta is tb and a.r == b.r)
        return bool(a == b) if ta in _SCALARS and tb in _SCALARS else a is b

    def order(self, fn: Callable[[Any, Any], bool], a: Value, b: Value, depth: int = 0) -> bool:
        ta, tb = type(a), type(b)
        if ta is tb and ta in (list, tuple):
            if depth >= MAX_NEST:
                raise ProgramError("values nested too deeply")
            self.tick(1 + min(len(a), len(b)) // COPY_COST)
            for x, y in zip(a, b, strict=False):
                if not self.eq(x, y, depth + 1):
                    return self.order(fn, x, y, depth + 1)
            return fn(len(a), len(b))
        if (ta in _NUMS and tb in _NUMS) or (ta is str and tb is str):
            return fn(a, b)
        raise ProgramError(f"cannot order a {_type(a)} and a {_type(b)}")

    def compare(self, op: ast.cmpop, a: Value, b: Value) -> bool:
        kind = type(op)
        if kind in (ast.Eq, ast.NotEq):
            return self.eq(a, b) == (kind is ast.Eq)
        if kind in (ast.Is, ast.IsNot):
            return (a is b) == (kind is ast.Is)
        if kind in (ast.In, ast.NotIn):
            return self.contains(b, a) == (kind is ast.In)
        return self.order(_ORDER[kind], a, b)

    def contains(self, box: Value, item: Value) -> bool:
        if type(box) is str:
            if type(item) is not str:
                raise ProgramError("`in <string>` needs a string on the left")
            self.tick(len(box) // COPY_COST)
            return item in box
        if type(box) is Range:
            if type(item) is float and item.is_integer():
                item = int(item)
            return _is_int(item) and item in box.r
        return any(self.eq(x, item) for x in self.items(box))

    def cmp(self, a: Value, b: Value) -> int:
        self.tick()
        return -1 if self.order(operator.lt, a, b) else int(self.order(operator.lt, b, a))

    def show(self, v: Value, quote: bool = False) -> str:
        """str(v), or repr(v) with quote; bounded in length and nesting."""
        parts: list[str] = []
        size = 0

        def put(s: str) -> None:
            nonlocal size
            size += len(s)
            if size > MAX_STR:
                raise ProgramError("string too long")
            self.tick(len(s) // COPY_COST)
            parts.append(s)

        def walk(x: Value, depth: int, quote: bool) -> None:
            t = type(x)
            if t in (list, tuple):
                if depth >= MAX_NEST:
                    raise ProgramError("values nested too deeply")
                self.tick(1 + len(x) // COPY_COST)
                put("[" if t is list else "(")
                for i, y in enumerate(x):
                    put(", " if i else "")
                    walk(y, depth + 1, True)
                put(("," if len(x) == 1 else "") + ")" if t is tuple else "]")
            elif t is str:
                put(repr(x) if quote else x)
            elif t is Range:
                put(repr(x.r))
            elif t in (Function, Builtin):
                put(f"<function {x.name}>")
            else:
                put(repr(x))

        walk(v, 0, quote)
        return "".join(parts)


_STMTS: dict[type, Callable[[Interpreter, Any, Scope], None]] = {
    ast.Expr: Interpreter.s_expr, ast.Assign: Interpreter.s_assign,
    ast.AnnAssign: Interpreter.s_annassign, ast.AugAssign: Interpreter.s_augassign,
    ast.If: Interpreter.s_if, ast.For: Interpreter.s_for, ast.While: Interpreter.s_while,
    ast.Break: Interpreter.s_break, ast.Continue: Interpreter.s_continue,
    ast.Pass: Interpreter.s_pass, ast.Import: Interpreter.s_pass,
    ast.Return: Interpreter.s_return, ast.FunctionDef: Interpreter.s_def,
    ast.ImportFrom: Interpreter.s_importfrom, ast.Assert: Interpreter.s_assert,
}
_EXPRS: dict[type, Callable[[Interpreter, Any, Scope], Value]] = {
    ast.Constant: Interpreter.e_constant, ast.Name: Interpreter.e_name,
    ast.Attribute: Interpreter.e_attribute, ast.BinOp: Interpreter.e_binop,
    ast.UnaryOp: Interpreter.e_unaryop, ast.BoolOp: Interpreter.e_boolop,
    ast.Compare: Interpreter.e_compare, ast.IfExp: Interpreter.e_ifexp,
    ast.Call: Interpreter.e_call, ast.List: Interpreter.e_list, ast.Tuple: Interpreter.e_tuple,
    ast.Subscript: Interpreter.e_subscript, ast.JoinedStr: Interpreter.e_joinedstr,
}


# --- builtins: the interpreter's own, checking their arguments --------------------------

def _nums(name: str, args: list[Value], lo: int, hi: int, ints: bool = False) -> None:
    _arity(name, args, lo, hi)
    if not all(_is_int(a) if ints else _is_num(a) for a in args):
        raise ProgramError(f"{name}() takes {'integers' if ints else 'numbers'}")


def _round(it: Interpreter, args: list[Value]) -> Value:
    _arity("round", args, 1, 2)
    if not _is_num(args[0]) or (len(args) == 2 and not _is_int(args[1])):
        raise ProgramError("round() takes a number and an integer")
    if len(args) == 2 and abs(args[1]) > 100:  # round(5, -10**30) would compute 10**10**30
        raise ProgramError("round(): ndigits too large")
    return round(*args)


def _flat(xs: list[Value]) -> bool:
    return all(type(x) in _NUMS for x in xs) or all(type(x) is str for x in xs)


def _text_cost(xs: list[Value]) -> int:
    """Steps for comparing strings at C speed: their characters, not their count."""
    return sum(len(x) for x in xs if type(x) is str) // COPY_COST


def _sorted(it: Interpreter, xs: list[Value]) -> Value:
    # n log n comparisons, each of which may walk a whole string
    it.tick(_text_cost(xs) * max(1, len(xs).bit_length()))
    return sorted(xs) if _flat(xs) else sorted(xs, key=functools.cmp_to_key(it.cmp))


def _extreme(name: str, fn: Callable[[Any, Any], bool]) -> Builtin:
    def run(it: Interpreter, args: list[Value]) -> Value:
        if len(args) == 1 and type(args[0]) is Range and len(args[0].r):
            ends = args[0].r[0], args[0].r[-1]  # a range's extremes are its ends
            return ends[0] if fn(ends[0], ends[1]) else ends[1]
        items = it.items(args[0]) if len(args) == 1 else args
        if not items:
            raise ProgramError(f"{name}() of an empty sequence")
        if _flat(items):  # numbers only or strings only: Python's own, at C speed
            it.tick(_text_cost(items))
            return (min if fn is operator.lt else max)(items)
        best = items[0]
        for x in items[1:]:
            it.tick()
            if it.order(fn, x, best):
                best = x
        return best

    return Builtin(name, run)


def _sum(it: Interpreter, args: list[Value]) -> Value:
    _arity("sum", args, 1, 2)
    total = args[1] if len(args) == 2 else 0
    if not _is_num(total):
        raise ProgramError("sum() adds numbers only")
    if type(args[0]) is Range:
        r = args[0].r  # sum of an arithmetic sequence, without walking a million numbers
        return total + (len(r) * (r[0] + r[-1]) // 2 if len(r) else 0)
    for x in it.items(args[0]):
        if not _is_num(x):
            raise ProgramError("sum() adds numbers only")
        total = _checked(total + x)
    return total


def _convert(name: str, kind: type) -> Builtin:
    def run(it: Interpreter, args: list[Value]) -> Value:
        _arity(name, args, 0, 1)
        if args and type(args[0]) not in (int, float, bool, str):
            raise ProgramError(f"{name}() takes a number or a string")
        if args and type(args[0]) is str:
            it.tick(len(args[0]) // COPY_COST)  # parsing thousands of digits takes time
        return kind(*args)

    return Builtin(name, run)


def _range(it: Interpreter, args: list[Value]) -> Value:
    _nums("range", args, 1, 3, ints=True)
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = MAX_RANGE + 1
    if n > MAX_RANGE:
        raise ProgramError(f"range longer than {MAX_RANGE} elements")
    return Range(r)


def _pow(it: Interpreter, args: list[Value]) -> Value:
    if len(args) == 3:
        _nums("pow", args, 3, 3, ints=True)
        return pow(*args)
    _nums("pow", args, 2, 2)
    return _power(*args)


def _print(it: Interpreter, args: list[Value]) -> Value:
    line = " ".join(it.show(a) for a in args) + "\n"
    it.out_len += len(line)
    if it.out_len > MAX_OUTPUT:
        raise ProgramError(f"more than {MAX_OUTPUT} characters printed")
    it.out.append(line)
    return None


def _zip(it: Interpreter, args: list[Value]) -> Value:
    columns = [it.items(a) for a in args]
    return list(zip(*columns, strict=False))


def _enumerate(it: Interpreter, args: list[Value]) -> Value:
    _arity("enumerate", args, 1, 2)
    start = args[1] if len(args) == 2 else 0
    if not _is_int(start):
        raise ProgramError("enumerate() start must be an integer")
    items = it.items(args[0])
    _checked(start + len(items))  # the last index stays within the integer limit
    return [(start + i, x) for i, x in enumerate(items)]


def _divmod(it: Interpreter, args: list[Value]) -> Value:
    _nums("divmod", args, 2, 2)
    return divmod(args[0], args[1])


def _abs(it: Interpreter, args: list[Value]) -> Value:
    _nums("abs", args, 1, 1)
    return abs(args[0])


def _str(it: Interpreter, args: list[Value]) -> Value:
    _arity("str", args, 0, 1)
    return it.show(args[0]) if args else ""


def _bool(it: Interpreter, args: list[Value]) -> Value:
    _arity("bool", args, 0, 1)
    return bool(args) and it.truth(args[0])


def _len(it: Interpreter, args: list[Value]) -> Value:
    _arity("len", args, 1, 1)
    x = args[0]
    if type(x) not in (list, tuple, str, Range):
        raise ProgramError(f"a {_type(x)} has no len()")
    return len(x.r) if type(x) is Range else len(x)


def _copy(name: str, fn: Callable[[Interpreter, list[Value]], Value]) -> Builtin:
    """A builtin of one optional iterable, given a bounded, paid-for copy of its elements."""

    def run(it: Interpreter, args: list[Value]) -> Value:
        _arity(name, args, 0 if name in ("list", "tuple") else 1, 1)
        return fn(it, it.items(args[0]) if args else [])

    return Builtin(name, run)


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("abs", _abs),
    Builtin("round", _round), _extreme("min", operator.lt), _extreme("max", operator.gt),
    Builtin("sum", _sum), _convert("int", int), _convert("float", float), Builtin("len", _len),
    Builtin("range", _range), Builtin("divmod", _divmod), Builtin("pow", _pow),
    Builtin("print", _print), Builtin("str", _str), Builtin("bool", _bool),
    _copy("list", lambda it, xs: xs), _copy("tuple", lambda it, xs: tuple(xs)),
    _copy("sorted", _sorted),
    _copy("reversed", lambda it, xs: xs[::-1]),
    _copy("any", lambda it, xs: any(it.truth(x) for x in xs)),
    _copy("all", lambda it, xs: all(it.truth(x) for x in xs)),
    Builtin("zip", _zip), Builtin("enumerate", _enumerate),
]}


def _math(name: str, fn: Callable[..., Value], lo: int, hi: int, ints: bool = False,
          guard: Callable[..., bool] | None = None) -> Builtin:
    def run(it: Interpreter, args: list[Value]) -> Value:
        _nums(f"math.{name}", args, lo, hi, ints)
        if guard is not None and guard(*args):  # the result would be huge: refuse first
            raise ProgramError("integer too large")
        return fn(*args)

    return Builtin(f"math.{name}", run)


MATH: dict[str, Value] = {
    "pi": math.pi, "e": math.e,
    "floor": _math("floor", math.floor, 1, 1), "ceil": _math("ceil", math.ceil, 1, 1),
    "trunc": _math("trunc", math.trunc, 1, 1), "sqrt": _math("sqrt", math.sqrt, 1, 1),
    "fabs": _math("fabs", math.fabs, 1, 1), "exp": _math("exp", math.exp, 1, 1),
    "log": _math("log", math.log, 1, 2), "pow": _math("pow", math.pow, 2, 2),
    "isclose": _math("isclose", math.isclose, 2, 2),
    "gcd": _math("gcd", math.gcd, 0, 100, ints=True),
    "lcm": _math("lcm", math.lcm, 0, 100, ints=True),
    # 35! is already past INT_LIMIT, and comb(n, k) >= 2**min(k, n-k)
    "factorial": _math("factorial", math.factorial, 1, 1, True, lambda n: n > 40),
    "comb": _math("comb", math.comb, 2, 2, True, lambda n, k: 0 <= k <= n and min(k, n - k) > 140),
    "perm": _math("perm", math.perm, 1, 2, True,
                  lambda n, k=None: n > 40 if k is None else 0 <= k <= n and k > 40),
}


# --- the public API ---------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def run_program(source: str, *, entry: str = "solution", max_steps: int = MAX_STEPS
                ) -> ProgramResult:
    """Run a program: its top-level statements, then `entry()` if it defines one.

    The value is what `entry()` returned, or else the value of the last top-level
    expression statement. Never raises: any rejection or failure is ok=False.
    """
    it: Interpreter | None = None
    try:
        if not isinstance(source, str) or len(source) > MAX_SOURCE:
            raise ProgramError(f"the program is longer than {MAX_SOURCE} characters")
        try:
            tree = ast.parse(source)
            _check_brackets(source)
        except ProgramError:
            raise
        except SyntaxError as e:
            raise ProgramError(f"syntax error: {e.msg}", e.lineno) from None
        except Exception:  # null bytes, parser recursion, tokenizer errors and the like
            raise ProgramError("the program cannot be parsed") from None
        _trim(tree, entry)
        check(tree)
        it = Interpreter(max_steps)
        value = it.run(tree, entry)
        return ProgramResult(True, value, "".join(it.out), None)
    except ProgramError as e:
        error = f"line {e.line}: {e.message}" if e.line else e.message
    except RecursionError:
        error = "recursion too deep"
    except MemoryError:
        error = "out of memory"
    except Exception as e:  # a bug of ours; still a failed program, not a crash
        error = f"internal error: {type(e).__name__}"
    return ProgramResult(False, None, "".join(it.out) if it else "", _one_line(error))


def _defines(source: str, entry: str) -> bool:
    if len(source) > MAX_SOURCE:
        return False
    try:
        tree = ast.parse(source)
    except Exception:
        return False
    return any(isinstance(s, ast.FunctionDef) and s.name == entry for s in tree.body)


_FENCE = r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)"  # re caches the compiled patterns
_CODE_START = r"(def |import |from )"


def extract_program(text: str) -> str | None:
    """The program in a model's reply: the last ```python fenced block (else the last bare
    ``` block), else the text itself, or its first code line onwards with trailing prose
    dropped, if that parses and defines `solution`; None if there is none."""
    tagged = bare = None
    for m in re.finditer(_FENCE, text, re.DOTALL):
        code = textwrap.dedent(m[2]).strip()
        if code and m[1].lower() in ("python", "py", "python3"):
            tagged = code
        elif code and not m[1]:
            bare = code
    if tagged or bare:
        return tagged or bare
    lines = textwrap.dedent(text).strip().splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(_CODE_START, line)), 0)
    for end in range(len(lines), max(start, len(lines) - 20), -1):
        candidate = "\n".join(lines[start:end]).strip()
        if _defines(candidate, "solution"):
            return candidate
    return None


_NUMBER = r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?"


def _number_text(text: str) -> str | None:
    # Only plain decimals, and short: Fraction("1e999999999") would build a huge integer.
    if len(text) > 60 or not re.fullmatch(_NUMBER, text):
        return None
    return format_number(Fraction(text.replace(",", "")))


def program_answer(result: ProgramResult) -> str | None:
    """The answer as text: a returned number (rounded to 6 places, "12.0" -> "12") or a
    returned string that is one, else the last number printed, else None."""
    if not result.ok:
        return None
    v = result.value
    if type(v) in (int, float):
        return format_number(Fraction(v))
    if type(v) is str and v.strip():
        return _number_text(v.strip())  # text is no answer to a word problem
    for m in reversed(list(re.finditer(_NUMBER, result.output))):
        answer = _number_text(m[0])
        if answer is not None:
            return answer
    return None


# --- the second layer: a worker process with rlimits and a wall-clock timeout -----------

def _plain(v: Value) -> bool:
    """Whether v is plain data to send back: scalars in lists and tuples, nested at most
    MAX_NEST deep, MAX_SENT elements in all (shared parts counted each time they appear,
    as JSON would write them); functions, ranges and cycles stay in the worker."""
    stack, sent = [(v, 0)], 0
    while stack:
        x, depth = stack.pop()
        sent += 1
        if sent > MAX_SENT or depth > MAX_NEST:
            return False  # also ends a cycle, which never runs out of elements
        if type(x) in (list, tuple):
            stack.extend((y, depth + 1) for y in x)
        elif type(x) not in _SCALARS:
            return False
    return True


def _limit_self(memory_mb: int, cpu_s: int) -> None:
    """Cap this process's address space and CPU time (POSIX; elsewhere a no-op)."""
    try:
        import resource

        def limit(kind: int, value: int) -> None:
            hard = resource.getrlimit(kind)[1]
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else hard))

        usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time counts from startup
        limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + cpu_s)
        limit(resource.RLIMIT_AS, memory_mb * 2**20)
    except (ImportError, ValueError, OSError):
        pass


def _serve(memory_mb: int, cpu_s: int) -> None:
    """The worker's loop (`python -m minsky.pyrun MEMORY_MB CPU_S`): one JSON request per
    line on stdin, one JSON result per line on stdout, until stdin closes."""
    _limit_self(memory_mb, cpu_s)
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        r = run_program(job["source"], entry=job["entry"], max_steps=job["max_steps"])
        value = r.value if _plain(r.value) else None
        try:
            reply = json.dumps([r.ok, value, r.output, r.error])
        except (ValueError, TypeError, RecursionError):
            reply = json.dumps([False, None, "", "the result cannot be sent back"])
        print(reply, flush=True)


class _Worker:
    """A long-lived worker process that runs programs one at a time: starting a process
    per program would cost more than the programs. It is a plain `python -m` child
    speaking JSON lines, not a multiprocessing one, which would import the parent's main
    script again in the child."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.runs = 0
        # -I: no environment variables, user site or current directory shape the child
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "minsky.pyrun", str(memory_mb), str(WORKER_CPU_S)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
        try:
            started = self._line(STARTUP_TIMEOUT_S) == "ready"
        except (TimeoutError, EOFError, ValueError):
            started = False
        if not started:
            self.close()
            raise OSError("the worker process did not start")

    def _line(self, timeout_s: float) -> str:
        """The worker's next line, waiting at most timeout_s; a bounded length."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        line = self.proc.stdout.readline(MAX_REPLY + 1)
        if not line:
            raise EOFError
        if len(line) > MAX_REPLY:
            raise ValueError("reply too long")
        return line.strip()

    def run(self, source: str, entry: str, max_steps: int, timeout_s: float) -> ProgramResult:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.runs += 1
        self.proc.stdin.write(json.dumps({"source": source, "entry": entry,
                                          "max_steps": max_steps}) + "\n")
        self.proc.stdin.flush()
        ok, value, output, error = json.loads(self._line(timeout_s))
        return ProgramResult(ok, value, output, error)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def run_program_guarded(source: str, *, entry: str = "solution", timeout_s: float = 5.0,
                        memory_mb: int = 256, max_steps: int = MAX_STEPS) -> ProgramResult:
    """run_program in a worker process with memory and CPU rlimits, killed (and replaced)
    when a program runs longer than timeout_s seconds of wall-clock time; blocks.

    One worker serves the programs of this process in turn; it is replaced after
    WORKER_RUNS programs, so its CPU limit (a backstop behind the interpreter's own step
    limit) is shared by a bounded number of them."""
    global _WORKER
    with _WORKER_LOCK:
        try:
            if _WORKER is not None and (_WORKER.memory_mb != memory_mb
                                        or _WORKER.runs >= WORKER_RUNS):
                _WORKER.close()
                _WORKER = None
            if _WORKER is None:
                _WORKER = _Worker(memory_mb)
            return _WORKER.run(source, entry, max_steps, timeout_s)
        except TimeoutError:
            error = f"timed out after {timeout_s:g}s"
        except OSError as e:
            error = str(e) if "did not start" in str(e) else "the worker process failed"
        except (EOFError, ValueError):
            error = "the worker process died (memory or CPU limit) or sent too much"
        if _WORKER is not None:
            _WORKER.close()
            _WORKER = None
        return ProgramResult(False, None, "", error)


async def run_program_isolated(source: str, *, entry: str = "solution",
                               timeout_s: float = 5.0, memory_mb: int = 256,
                               max_steps: int = MAX_STEPS) -> ProgramResult:
    """run_program_guarded in a thread, so that waiting for the worker blocks no event loop."""
    return await asyncio.to_thread(run_program_guarded, source, entry=entry,
                                   timeout_s=timeout_s, memory_mb=memory_mb, max_steps=max_steps)


async def _python_tool(text: str) -> str:
    result = await run_program_isolated(extract_program(text) or text.strip())
    if not result.ok:
        raise ToolError(result.error or "the program failed")
    answer = program_answer(result)
    return answer if answer is not None else result.output.strip()


# Behind both layers: the interpreter's own limits, and the worker process's rlimits and
# wall-clock timeout.
PYTHON_TOOL = Tool(
    "Python",
    "runs a short Python program (a small safe subset) and returns what solution() returns "
    "or what it prints",
    run=_python_tool,
    examples=(("def solution():\n    return 17 * 23 + 4", "395"),),
)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
