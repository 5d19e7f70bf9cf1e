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

The package re-exports its public names from private modules, one job each: `_limits`
(every bound), `_values` (results, errors, the program's values), `_check` (the allowlist
and the trimming of what models write around a program), `_operations`, `_expressions`,
`_statements` and `_interpreter` (the evaluator, layer on layer, and run_program),
`_builtins` (built-in functions and `math`), `_extract` (a program from a reply and an
answer from a result), `_worker` (the worker process) and `_tool` (the `Python` tool).
"""

from __future__ import annotations

from minsky.pyrun._extract import extract_program, program_answer
from minsky.pyrun._interpreter import run_program
from minsky.pyrun._limits import INT_LIMIT, MAX_OUTPUT
from minsky.pyrun._tool import PYTHON_TOOL
from minsky.pyrun._values import ProgramResult
from minsky.pyrun._worker import run_program_guarded, run_program_isolated

__all__ = [
    "INT_LIMIT",
    "MAX_OUTPUT",
    "PYTHON_TOOL",
    "ProgramResult",
    "extract_program",
    "program_answer",
    "run_program",
    "run_program_guarded",
    "run_program_isolated",
]

