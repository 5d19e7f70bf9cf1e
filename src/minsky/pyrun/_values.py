"""What a program's values are and what its run gives back: the result, the error, the
interpreter's own function and range objects, scopes, and checks every value passes."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from minsky.pyrun._limits import INT_LIMIT, MAX_EXPONENT, MAX_POWER_BITS

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


class Machine(Protocol):
    """What a builtin uses of the interpreter that calls it (`_interpreter.Interpreter`,
    through `_operations.Operations`): a Protocol, so that the builtins, which the
    interpreter's layers import, import none of them."""

    out: list[str]
    out_len: int

    def tick(self, n: int = 1) -> None: ...

    def truth(self, v: Value) -> bool: ...

    def items(self, v: Value) -> list[Value]: ...

    def order(self, fn: Callable[[Any, Any], bool], a: Value, b: Value,
              depth: int = 0) -> bool: ...

    def cmp(self, a: Value, b: Value) -> int: ...

    def show(self, v: Value, quote: bool = False) -> str: ...


@dataclass(frozen=True, eq=False)
class Builtin:
    """A function of the interpreter's own, from BUILTINS or MATH."""

    name: str
    fn: Callable[[Machine, list[Value]], Value] = field(repr=False)


@dataclass(frozen=True, eq=False)
class Range:
    """The program's range(): bounded, iterated lazily."""

    r: range


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
