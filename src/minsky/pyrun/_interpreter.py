"""The interpreter and run_program, its entry: parse, trim, check, then run the tree."""

from __future__ import annotations

import ast

from minsky.pyrun._check import _check_brackets, _is_docstring, _trim, check
from minsky.pyrun._limits import MAX_CALLS, MAX_SOURCE, MAX_STEPS
from minsky.pyrun._statements import Statements
from minsky.pyrun._values import (
    Builtin,
    Function,
    ProgramError,
    ProgramResult,
    Scope,
    Value,
    _Break,
    _checked,
    _Continue,
    _Return,
    _type,
)


class Interpreter(Statements):
    """Runs a checked tree; counts steps, output and nested calls."""

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
