"""What a tool is: a named function from text to text.

Tools are called inline, Toolformer style: a model writes `[Calculator(3*12-7)]` and
minsky completes it as `[Calculator(3*12-7)->29]`. A tool receives the text between the
parentheses and returns the result as text; it raises `ToolError` for input it cannot
handle, and the error goes back into the text as the result (`->error: …`), so a bad
call never crashes a run. Tool inputs are parsed, never executed. A synchronous tool runs
in a worker thread, so a slow one holds up no other member and its timeout can fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

ToolFn = Callable[[str], "str | Awaitable[str]"]


class ToolError(Exception):
    """A tool could not handle its input; the message becomes the call's result."""


@dataclass(frozen=True)
class Tool:
    """A named text-to-text function with few-shot examples for prompts."""

    name: str
    description: str
    run: ToolFn
    examples: tuple[tuple[str, str], ...] = field(default=())  # (input, result) pairs
    # A worked exchange (question, answer that calls the tool), put before the task as an
    # earlier turn: small models copy a call from a turn of their own far more readily
    # than from a list of bare calls in the system message.
    demo: tuple[str, str] | None = None

    async def __call__(self, text: str) -> str:
        if inspect.iscoroutinefunction(self.run):
            result = await self.run(text)
            return str(result)
        result = await _in_daemon_thread(self.run, text)
        if inspect.isawaitable(result):
            result = await result
        return str(result)


async def _in_daemon_thread(fn: Callable[[str], Any], text: str) -> Any:
    """`fn(text)` in a thread of its own, awaited without blocking the event loop.

    subtle: a thread cannot be stopped, so a call that timed out runs on to its end in the
    background (tools bound their own work: Search caps what it reads). A daemon thread,
    unlike asyncio.to_thread's pool, does not hold up the process's exit meanwhile.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Any, failed: bool) -> None:
        if not done.done():  # nobody waits any more after a timeout
            (done.set_exception if failed else done.set_result)(outcome)

    def work() -> None:
        try:
            outcome, failed = context.run(fn, text), False
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            outcome, failed = exc, True
        # a RuntimeError: the loop is gone, and the run it belonged to has ended
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome, failed)

    threading.Thread(target=work, name="minsky-tool", daemon=True).start()
    return await done


def tool_from_function(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """Make a Tool of a Python function with type hints.

    A function of one `str` parameter gets the call's input as is. A function of several
    parameters gets the input split on commas and each part converted to its parameter's
    annotated type (int, float, bool or str); a part that does not convert is a
    ToolError.
    """
    hints = get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())
    if any(p.name not in hints for p in params):
        raise TypeError(f"tool {fn.__name__}: every parameter needs a type hint")
    doc = inspect.getdoc(fn) or ""

    def run(text: str) -> Any:
        if len(params) == 1 and hints[params[0].name] is str:
            return fn(text)
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        if len(parts) != len(params):
            raise ToolError(f"expected {len(params)} argument(s), got {len(parts)}")
        args = []
        for part, p in zip(parts, params, strict=True):
            kind = hints[p.name]
            try:
                if kind is bool:
                    if part.lower() not in ("true", "false"):
                        raise ValueError(part)
                    args.append(part.lower() == "true")
                else:
                    args.append(kind(part))
            except (TypeError, ValueError):
                raise ToolError(
                    f"argument {p.name!r}: expected {getattr(kind, '__name__', kind)}, "
                    f"got {part!r}"
                ) from None
        return fn(*args)

    return Tool(name or fn.__name__, doc.split("\n")[0], run)
