"""A run as an OpenTelemetry trace, built by one more observer of the typed run events.

The span tree of a run:

    invoke_agent SOCIETY          the run: society, organisation, status, answer, votes
      round LABEL                 one per round the organisation asks ("round 2" as is)
        chat MODEL                one per member call (GenAI semantic conventions)
          execute_tool TOOL       the inline tool calls of that reply
        invoke_agent MEMBER       a member that is a society; linked to its run's span
        invoke_agent SUBSOCIETY   that run, a child of the round its parent asked it in

Budget stops and errors (`Note` events), the members' votes and the decision are span
events. Attribute names follow the GenAI semantic conventions as of their v1.37
(`gen_ai.provider.name`, `gen_ai.input.messages`); `gen_ai.system`, the older name of the
provider, is set too, for backends that still read it.

Prompt and reply text, the question, a text answer and tools' inputs and results go into
spans only with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: traces often
leave the machine. Events carry durations (a reply's latency), not clock times: a span
starts when its event arrives, and a call's span ends when its reply does and starts its
latency earlier. `clock` stands in for the wall clock when a logged run is replayed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from minsky.messages import ChatReply, ChatRequest
from minsky.run_events import CallDone, Note, RoundStarted, RunEvent, RunFinished, RunStarted

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# notes whose data is what users wrote (a served conversation): content, not telemetry
CONTENT_NOTES = {"conversation"}
Attributes = dict[str, AttributeValue]


def capture_content() -> bool:
    """Whether the user opted in to prompt and reply text in spans."""
    return os.environ.get(CAPTURE, "").strip().lower() == "true"


@dataclass
class _Open:
    """A run whose span is open, and what its later events need."""

    span: Span
    kind: str
    models: dict[str, str]
    parent: str | None = None
    round: Span | None = None
    round_start: int = 0
    # the spans of its sub-society runs that ended, for the calls that delegated to them
    children: dict[str, SpanContext] = field(default_factory=dict)


class TraceObserver:
    """Turns run events into spans on `tracer`; `capture` (default: the environment's
    switch) puts message text in them."""

    def __init__(self, tracer: Tracer, capture: bool | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.tracer = tracer
        self.capture = capture_content() if capture is None else capture
        self.clock = clock
        self.runs: dict[str, _Open] = {}

    def __call__(self, e: RunEvent) -> None:
        if isinstance(e, RunStarted):
            self._started(e)
            return
        run = self.runs.get(e.run_id)
        if run is None:
            return  # a run that began before tracing did
        if isinstance(e, RoundStarted):
            self._round(run, e)
        elif isinstance(e, CallDone):
            self._call(run, e)
        elif isinstance(e, Note):
            self._note(run, e)
        elif isinstance(e, RunFinished):
            self._finished(run, e)
        # a scoring call (ScoreDone) is no GenAI operation: its run's span stands for it

    def _started(self, e: RunStarted) -> None:
        parent = self.runs.get(e.parent) if e.parent else None
        # a top-level run continues the current context: a served request's traceparent
        ctx = trace.set_span_in_context(parent.round or parent.span) if parent else None
        attrs: Attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": e.society,
            "minsky.run_id": e.run_id,
            "minsky.society": e.society,
            "minsky.answer_kind": e.kind,
        }
        if organisation := e.config.get("organisation"):
            attrs["minsky.organisation"] = str(organisation)
        if e.parent:
            attrs["minsky.parent_run_id"] = e.parent
        if e.resumed:
            attrs["minsky.resumed"] = True
        if self.capture:
            attrs["minsky.question"] = e.question
        span = self.tracer.start_span(f"invoke_agent {e.society}", ctx, SpanKind.INTERNAL,
                                      attrs, start_time=self.clock())
        self.runs[e.run_id] = _Open(span, e.kind, e.models, e.parent)

    def _round(self, run: _Open, e: RoundStarted) -> None:
        now = self.clock()
        if run.round is not None:
            run.round.end(now)
        # a debate's rounds are labelled "round 1", "round 2": not "round round 1"
        name = e.label if e.label.startswith("round") else f"round {e.label}"
        run.round = self.tracer.start_span(
            name, trace.set_span_in_context(run.span), SpanKind.INTERNAL,
            {"minsky.round": e.round, "minsky.round.label": e.label, "minsky.round.asks": e.asks},
            start_time=now)
        run.round_start = now

    def _call(self, run: _Open, e: CallDone) -> None:
        end = self.clock()
        # the reply took its latency, and at least as long as the tools it called
        took = max(int(e.reply.latency_s * 1e9), sum(int(c.latency_s * 1e9)
                                                     for c in e.tool_calls))
        start = max(end - took, min(run.round_start, end))
        ctx = trace.set_span_in_context(run.round or run.span)
        attrs: Attributes = {
            "minsky.agent": e.agent, "minsky.purpose": e.purpose, "minsky.round": e.round,
            "minsky.index": e.index, "minsky.backend": e.where,
            **_usage(e.reply), **_request(e.request),
        }
        links: list[Link] = []
        if e.child is not None:
            name = f"invoke_agent {e.agent}"
            attrs |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": e.agent}
            child = run.children.pop(e.child, None)
            links = [Link(child)] if child is not None else []
        else:
            provider = _provider(run.models.get(e.model) or e.where)
            model = e.model.removeprefix(f"{provider}:")
            name = f"chat {model}"
            attrs |= {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                      "gen_ai.system": provider, "gen_ai.request.model": model}
        if e.where == "replayed":
            attrs["minsky.replayed"] = True
        if self.capture:
            attrs |= _messages(e.request, e.reply)
        span = self.tracer.start_span(name, ctx, SpanKind.CLIENT, attrs, links,
                                      start_time=start)
        if e.reply.finish_reason == "error":
            span.set_attribute("error.type", _error_type(e.reply.error))
            span.set_status(StatusCode.ERROR, e.reply.error or "the call failed")
        self._tools(span, e.tool_calls, start, end)
        span.end(end)

    def _tools(self, call: Span, calls: list[Any], start: int, end: int) -> None:
        """The reply's tool calls as its children, back to back up to its end (the events
        give each call's duration, not its clock time)."""
        ctx = trace.set_span_in_context(call)
        at = max(start, end - sum(int(c.latency_s * 1e9) for c in calls))
        for c in calls:
            attrs: Attributes = {"gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": c.tool}
            if self.capture:
                attrs |= {"gen_ai.tool.call.arguments": c.input,
                          "gen_ai.tool.call.result": c.result}
            span = self.tracer.start_span(f"execute_tool {c.tool}", ctx, SpanKind.INTERNAL,
                                          attrs, start_time=at)
            if c.error:
                span.set_attribute("error.type", "tool_error")
                span.set_status(StatusCode.ERROR, "the tool failed")
            at = min(end, at + int(c.latency_s * 1e9))
            span.end(at)

    def _note(self, run: _Open, e: Note) -> None:
        if e.kind in CONTENT_NOTES and not self.capture:
            return
        attrs = {f"minsky.{k}": _value(v) for k, v in e.data.items()}
        if e.round is not None:
            attrs.setdefault("minsky.round", e.round)
        (run.round or run.span).add_event(f"minsky.{e.kind}", attrs, self.clock())

    def _finished(self, run: _Open, e: RunFinished) -> None:
        now = self.clock()
        if run.round is not None:
            run.round.end(now)
        span, outcome = run.span, e.outcome
        # a text answer is a reply's text: content; a number or a letter is not
        shown = self.capture or run.kind != "text"
        for m in outcome.members:
            vote: Attributes = {"minsky.agent": m.name, "minsky.round": m.round}
            if shown and m.answer is not None:
                vote["minsky.answer"] = m.answer
            span.add_event("minsky.vote", vote, now)
        decision: Attributes = {}
        if shown and outcome.answer is not None:
            decision["minsky.answer"] = outcome.answer
        if shown and outcome.tally is not None:
            decision["minsky.tally"] = json.dumps(outcome.tally, default=str)
        span.add_event("minsky.decision", decision, now)
        span.set_attributes({
            "minsky.status": e.status, "minsky.wall_s": round(e.wall_s, 6),
            "minsky.usage.input_tokens": e.usage.prompt_tokens,
            "minsky.usage.output_tokens": e.usage.completion_tokens,
            **({"minsky.answer": outcome.answer} if shown and outcome.answer else {}),
        })
        if e.status == "error":
            span.set_status(StatusCode.ERROR, "the run failed")
        span.end(now)
        del self.runs[e.run_id]
        parent = self.runs.get(run.parent) if run.parent else None
        if parent is not None:
            parent.children[e.run_id] = span.get_span_context()


def _request(request: ChatRequest) -> Attributes:
    o = request.options
    attrs: Attributes = {"gen_ai.request.temperature": o.temperature,
                         "gen_ai.request.top_p": o.top_p,
                         "gen_ai.request.max_tokens": o.max_tokens}
    if o.top_k:
        attrs["gen_ai.request.top_k"] = o.top_k
    if o.seed is not None:
        attrs["gen_ai.request.seed"] = o.seed
    if o.stop:
        attrs["gen_ai.request.stop_sequences"] = list(o.stop)
    return attrs


def _usage(reply: ChatReply) -> Attributes:
    u = reply.usage
    attrs: Attributes = {"gen_ai.usage.input_tokens": u.prompt_tokens,
                         "gen_ai.usage.output_tokens": u.completion_tokens,
                         "gen_ai.response.finish_reasons": [reply.finish_reason]}
    if u.cached_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = u.cached_tokens
    return attrs


def _messages(request: ChatRequest, reply: ChatReply) -> Attributes:
    """The call's text in the conventions' JSON shapes (system instructions apart)."""

    def parts(text: str) -> list[dict[str, str]]:
        return [{"type": "text", "content": text}]

    system = [p for m in request.messages if m.role == "system" for p in parts(m.content)]
    chat = [{"role": m.role, "parts": parts(m.content)}
            for m in request.messages if m.role != "system"]
    output = [{"role": "assistant", "parts": parts(request.prefix + reply.text),
               "finish_reason": reply.finish_reason}]
    attrs: Attributes = {"gen_ai.input.messages": json.dumps(chat, ensure_ascii=False),
                         "gen_ai.output.messages": json.dumps(output, ensure_ascii=False)}
    if system:
        attrs["gen_ai.system_instructions"] = json.dumps(system, ensure_ascii=False)
    return attrs


def _provider(backend: str) -> str:
    """The provider of a backend, from its description ("openai:gpt-4o@…", "llama:…",
    "scripted")."""
    return backend.split(":", 1)[0].split(" ", 1)[0] or "_OTHER"


def _error_type(error: str | None) -> str:
    """A low-cardinality name for a failed call: the exception's, where the message
    starts with one ("ReadTimeout: …"), else "_OTHER"."""
    head = (error or "").split(":", 1)[0]
    return head if head.isidentifier() else "_OTHER"


def _value(v: Any) -> AttributeValue:
    if isinstance(v, str | bool | int | float):
        return v
    return json.dumps(v, default=str, ensure_ascii=False)
