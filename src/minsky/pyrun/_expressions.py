"""The interpreter's expressions: each node type's evaluation, and name lookup."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from minsky.pyrun._builtins import BUILTINS, MATH
from minsky.pyrun._limits import COPY_COST, MAX_STR
from minsky.pyrun._operations import Operations
from minsky.pyrun._values import (
    ProgramError,
    Range,
    Scope,
    Value,
    _checked,
    _is_int,
    _is_num,
    _type,
)


class Expressions(Operations):
    """Evaluates expression nodes; dispatched by node type through _EXPRS."""

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

    def call(self, fn: Value, args: list[Value]) -> Value:
        """Call a function value; defined by the Interpreter, since calling one of the
        program's own functions runs its statements."""
        raise NotImplementedError


_EXPRS: dict[type, Callable[[Expressions, Any, Scope], Value]] = {
    ast.Constant: Expressions.e_constant, ast.Name: Expressions.e_name,
    ast.Attribute: Expressions.e_attribute, ast.BinOp: Expressions.e_binop,
    ast.UnaryOp: Expressions.e_unaryop, ast.BoolOp: Expressions.e_boolop,
    ast.Compare: Expressions.e_compare, ast.IfExp: Expressions.e_ifexp,
    ast.Call: Expressions.e_call, ast.List: Expressions.e_list, ast.Tuple: Expressions.e_tuple,
    ast.Subscript: Expressions.e_subscript, ast.JoinedStr: Expressions.e_joinedstr,
}
