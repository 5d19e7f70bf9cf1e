"""The program's built-in functions and `math` table: the interpreter's own, each
checking its arguments and paying for the elements it touches."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

from minsky.pyrun._limits import COPY_COST, MAX_OUTPUT, MAX_RANGE
from minsky.pyrun._values import (
    _NUMS,
    Builtin,
    Machine,
    ProgramError,
    Range,
    Value,
    _arity,
    _checked,
    _is_int,
    _is_num,
    _power,
    _type,
)


def _nums(name: str, args: list[Value], lo: int, hi: int, ints: bool = False) -> None:
    _arity(name, args, lo, hi)
    if not all(_is_int(a) if ints else _is_num(a) for a in args):
        raise ProgramError(f"{name}() takes {'integers' if ints else 'numbers'}")


def _round(it: Machine, args: list[Value]) -> Value:
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


def _sorted(it: Machine, xs: list[Value]) -> Value:
    # n log n comparisons, each of which may walk a whole string
    it.tick(_text_cost(xs) * max(1, len(xs).bit_length()))
    return sorted(xs) if _flat(xs) else sorted(xs, key=functools.cmp_to_key(it.cmp))


def _extreme(name: str, fn: Callable[[Any, Any], bool]) -> Builtin:
    def run(it: Machine, args: list[Value]) -> Value:
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


def _sum(it: Machine, args: list[Value]) -> Value:
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
    def run(it: Machine, args: list[Value]) -> Value:
        _arity(name, args, 0, 1)
        if args and type(args[0]) not in (int, float, bool, str):
            raise ProgramError(f"{name}() takes a number or a string")
        if args and type(args[0]) is str:
            it.tick(len(args[0]) // COPY_COST)  # parsing thousands of digits takes time
        return kind(*args)

    return Builtin(name, run)


def _range(it: Machine, args: list[Value]) -> Value:
    _nums("range", args, 1, 3, ints=True)
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = MAX_RANGE + 1
    if n > MAX_RANGE:
        raise ProgramError(f"range longer than {MAX_RANGE} elements")
    return Range(r)


def _pow(it: Machine, args: list[Value]) -> Value:
    if len(args) == 3:
        _nums("pow", args, 3, 3, ints=True)
        return pow(*args)
    _nums("pow", args, 2, 2)
    return _power(*args)


def _print(it: Machine, args: list[Value]) -> Value:
    line = " ".join(it.show(a) for a in args) + "\n"
    it.out_len += len(line)
    if it.out_len > MAX_OUTPUT:
        raise ProgramError(f"more than {MAX_OUTPUT} characters printed")
    it.out.append(line)
    return None


def _zip(it: Machine, args: list[Value]) -> Value:
    columns = [it.items(a) for a in args]
    return list(zip(*columns, strict=False))


def _enumerate(it: Machine, args: list[Value]) -> Value:
    _arity("enumerate", args, 1, 2)
    start = args[1] if len(args) == 2 else 0
    if not _is_int(start):
        raise ProgramError("enumerate() start must be an integer")
    items = it.items(args[0])
    _checked(start + len(items))  # the last index stays within the integer limit
    return [(start + i, x) for i, x in enumerate(items)]


def _divmod(it: Machine, args: list[Value]) -> Value:
    _nums("divmod", args, 2, 2)
    return divmod(args[0], args[1])


def _abs(it: Machine, args: list[Value]) -> Value:
    _nums("abs", args, 1, 1)
    return abs(args[0])


def _str(it: Machine, args: list[Value]) -> Value:
    _arity("str", args, 0, 1)
    return it.show(args[0]) if args else ""


def _bool(it: Machine, args: list[Value]) -> Value:
    _arity("bool", args, 0, 1)
    return bool(args) and it.truth(args[0])


def _len(it: Machine, args: list[Value]) -> Value:
    _arity("len", args, 1, 1)
    x = args[0]
    if type(x) not in (list, tuple, str, Range):
        raise ProgramError(f"a {_type(x)} has no len()")
    return len(x.r) if type(x) is Range else len(x)


def _copy(name: str, fn: Callable[[Machine, list[Value]], Value]) -> Builtin:
    """A builtin of one optional iterable, given a bounded, paid-for copy of its elements."""

    def run(it: Machine, args: list[Value]) -> Value:
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
    def run(it: Machine, args: list[Value]) -> Value:
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
