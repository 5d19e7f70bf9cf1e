"""The interpreter's base: its counters, and its operations on values (arithmetic,
indexing, truth, iteration, comparison, display), each bounded and paid for in steps."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator
from typing import Any

from minsky.pyrun._check import _BINOPS, _ORDER
from minsky.pyrun._limits import COPY_COST, MAX_LIST, MAX_NEST, MAX_STR
from minsky.pyrun._values import (
    _NUMS,
    _SCALARS,
    Builtin,
    Function,
    ProgramError,
    Range,
    Scope,
    Value,
    _checked,
    _is_int,
    _is_num,
    _power,
    _type,
)


class Operations:
    """The interpreter's counters and its operations on values; the expression and
    statement layers build on it."""

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
