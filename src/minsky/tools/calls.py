"""Inline tool calls during generation: pause, run the tool, insert the result, resume.

The syntax is Toolformer's: a call is `[Name(input)]`, completed by minsky as
`[Name(input)->result]`. Generation pauses when the model either writes `->` after an
open call, or closes a call with `)]`; minsky then runs the tool, inserts `->result]`
and continues the same reply from there (a request whose `prefix` is the text so far,
which a backend with a prefix cache decodes only once). Every member of a round does
this on its own, concurrently, so one member's calculator call never holds up the rest
of the batch.

A tool's result is data, not instructions: it is stripped of brackets and line breaks
(so it cannot close the call early or start a new turn), cut to a maximum length, and
logged as a tool call. Errors (an unknown tool, bad input, a timeout) become the result
(`->error: division by zero]`) and never stop the run.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from pydantic import Field

from minsky.backends.base import Backend
from minsky.messages import ChatReply, ChatRequest
from minsky.strict import Strict
from minsky.tools.base import Tool, ToolError

ARROW, CLOSE = "->", ")]"
# an open call at the very end of the text: "[Name(" followed by input without brackets
_OPEN_CALL = re.compile(r"\[(?P<name>[A-Za-z][A-Za-z0-9_]*)\((?P<input>[^\[\]\n]{0,500})$")


class ToolLimits(Strict):
    """Limits on tool use within one reply."""

    max_calls: int = Field(5, ge=0, le=100, description="tool calls per reply")
    timeout_s: float = Field(10.0, gt=0, le=3600, allow_inf_nan=False, description="per call")
    max_result_chars: int = Field(200, ge=1)


@dataclass
class ToolCall:
    """One executed call, for the log."""

    tool: str
    input: str
    result: str
    error: bool
    latency_s: float


def open_call(text: str) -> tuple[str, str] | None:
    """(name, input) of a call left open at the end of `text`, else None.

    Generation pauses just before `->` or `)]`, so the text ends either with the call's
    closing parenthesis ("[Add(2, 3)") or just before it ("[Add(2, 3").
    """
    m = _OPEN_CALL.search(text)
    if m is None:
        return None
    return m["name"], m["input"].removesuffix(")")


def as_data(result: str, limit: int) -> str:
    """A tool result made safe to insert: one line, no brackets, at most `limit` chars."""
    flat = " ".join(result.replace("[", "(").replace("]", ")").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def run_tool(tools: dict[str, Tool], name: str, text: str, limits: ToolLimits) -> ToolCall:
    """Run one call; every failure becomes an `error: …` result."""
    start = time.perf_counter()
    error = True
    tool = tools.get(name)
    if tool is None:
        result = f"error: unknown tool {name}; available: {', '.join(sorted(tools)) or 'none'}"
    else:
        try:
            result = await asyncio.wait_for(tool(text.strip()), limits.timeout_s)
            error = False
        except ToolError as exc:
            result = f"error: {exc}"
        except TimeoutError:
            result = f"error: timed out after {limits.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - a broken tool must not break the run
            result = f"error: {type(exc).__name__}: {exc}"
    return ToolCall(name, text, as_data(result, limits.max_result_chars), error,
                    time.perf_counter() - start)


def with_call_stops(request: ChatRequest) -> ChatRequest:
    """The request with the stop strings that pause generation at a call."""
    stops = [s for s in (ARROW, CLOSE) if s not in request.options.stop]
    options = request.options.model_copy(update={"stop": [*request.options.stop, *stops]})
    return ChatRequest(request.messages, options, request.grammar, request.json_schema,
                       request.prefix)


async def resume_calls(
    backend: Backend,
    request: ChatRequest,
    reply: ChatReply,
    tools: dict[str, Tool],
    limits: ToolLimits,
    deadline: float | None = None,
) -> tuple[ChatReply, list[ToolCall]]:
    """Continue `reply` (the answer to `request`) through every tool call it makes, until
    `deadline` (a `time.perf_counter()` reading), if given.

    `request` must carry the call stop strings (see `with_call_stops`); the returned
    reply holds the whole text with results inserted and the usage of every segment.
    """
    user_stops = [s for s in request.options.stop if s not in (ARROW, CLOSE)]
    text = request.prefix + reply.text
    usage, latency = reply.usage, reply.latency_s
    calls: list[ToolCall] = []
    while reply.finish_reason == "stop" and reply.stop in (ARROW, CLOSE):
        if deadline is not None and time.perf_counter() >= deadline:
            # subtle: a backend that cannot be interrupted (a native decode) may swallow
            # the run's cancellation; the run's deadline still ends the reply here
            return ChatReply(text, usage, latency, "length"), calls
        found = open_call(text)
        if found is None or len(calls) >= limits.max_calls:
            # not a call after all (or over the limit): keep the text and go on without it
            text += reply.stop or ""
        else:
            call = await run_tool(tools, found[0], found[1], limits)
            calls.append(call)
            if not text.endswith(")"):
                text += ")"
            text += f"{ARROW}{call.result}]"
        budget = request.options.max_tokens - usage.completion_tokens
        if budget <= 0:
            return ChatReply(text, usage, latency, "length"), calls
        options = request.options.model_copy(update={"max_tokens": budget})
        if len(calls) >= limits.max_calls:
            options = options.model_copy(update={"stop": user_stops})
        nxt = ChatRequest(request.messages, options, request.grammar, request.json_schema,
                          prefix=text)
        (reply,) = await backend.complete([nxt])
        text += reply.text
        usage, latency = usage + reply.usage, latency + reply.latency_s
        if reply.finish_reason == "error":
            return ChatReply(text, usage, latency, "error", reply.error), calls
    stop = reply.stop if reply.stop not in (ARROW, CLOSE) else None
    return ChatReply(text, usage, latency, reply.finish_reason, reply.error, stop), calls
