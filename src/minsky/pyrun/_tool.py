"""The `Python` tool: a model's program, run in the worker, its answer as the result."""

from __future__ import annotations

from minsky.pyrun._extract import extract_program, program_answer
from minsky.pyrun._worker import run_program_isolated
from minsky.tools.base import Tool, ToolError


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
