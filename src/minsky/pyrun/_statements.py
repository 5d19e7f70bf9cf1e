"""The interpreter's statements: each node type's execution, and assignment to targets."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from minsky.pyrun._builtins import MATH
from minsky.pyrun._check import _is_append
from minsky.pyrun._expressions import Expressions
from minsky.pyrun._limits import MAX_LIST
from minsky.pyrun._values import (
    Function,
    ProgramError,
    Scope,
    Value,
    _Break,
    _Continue,
    _Return,
)


class Statements(Expressions):
    """Executes statement nodes; dispatched by node type through _STMTS."""

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


_STMTS: dict[type, Callable[[Statements, Any, Scope], None]] = {
    ast.Expr: Statements.s_expr, ast.Assign: Statements.s_assign,
    ast.AnnAssign: Statements.s_annassign, ast.AugAssign: Statements.s_augassign,
    ast.If: Statements.s_if, ast.For: Statements.s_for, ast.While: Statements.s_while,
    ast.Break: Statements.s_break, ast.Continue: Statements.s_continue,
    ast.Pass: Statements.s_pass, ast.Import: Statements.s_pass,
    ast.Return: Statements.s_return, ast.FunctionDef: Statements.s_def,
    ast.ImportFrom: Statements.s_importfrom, ast.Assert: Statements.s_assert,
}
