"""Runs as OpenTelemetry traces (`minsky.otel`): the span tree, names and attributes of
scripted-fake runs, caught by the SDK's in-memory exporter; content capture; the serve
`traceparent`; the replay of a logged run; and that tracing off imports nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import ROLE, society_dict
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from minsky import otel
from minsky.backends.base import Backend
from minsky.backends.fakes import FunctionBackend, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.messages import ChatReply, ChatRequest
from minsky.otel.observer import CAPTURE, TraceObserver
from minsky.otel.replay import replay
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.serve.app import ServeSettings, create_app
from minsky.serve.server import BackgroundServer
from minsky.society import Society, from_dict, load

Q = "What is 6*7?"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Any:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


async def traced(society: Society, backends: dict[str, Backend], tracer: Any,
                 log: RunLog | None = None, question: str = Q) -> Any:
    runner = Runner(Backends(overrides=backends), log, [TraceObserver(tracer)])
    return await runner.run(society, question)


def tree(spans: tuple[ReadableSpan, ...]) -> list[Any]:
    """The spans as nested [name, [children…]], children in start order."""
    kids: dict[int | None, list[ReadableSpan]] = {}
    for s in spans:
        kids.setdefault(s.parent.span_id if s.parent else None, []).append(s)

    def node(s: ReadableSpan) -> list[Any]:
        below = sorted(kids.get(s.context.span_id, []), key=lambda c: (c.start_time, c.name))
        return [s.name, [node(c) for c in below]] if below else [s.name]

    return [node(s) for s in kids.get(None, [])]


def unordered(nodes: list[Any]) -> list[Any]:
    """A `tree` with every node's children sorted by their own form, not start time."""
    def canon(node: list[Any]) -> list[Any]:
        return [node[0], unordered(node[1])] if len(node) > 1 else node

    return sorted((canon(n) for n in nodes), key=repr)


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


# -- the span tree --------------------------------------------------------------------------


async def test_a_vote_is_a_run_span_a_round_and_a_call_span_per_member(
        make_society: Callable[..., Society], tracer: Any,
        exporter: InMemorySpanExporter) -> None:
    society = make_society(society_dict(
        agents=[{"name": "solver", "role": "You solve.", "count": 3,
                 "options": {"temperature": 0.7, "max_tokens": 64, "seed": 3}}]))
    result = await traced(society, {"fake:a": ScriptedBackend(["42", "42", "41"])}, tracer)
    spans = exporter.get_finished_spans()
    assert tree(spans) == [["invoke_agent test", [
        ["round answer", [["chat fake:a"], ["chat fake:a"], ["chat fake:a"]]]]]]

    (run,) = named(spans, "invoke_agent test")
    assert dict(run.attributes or {}) | {"minsky.wall_s": 0} == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "test",
        "minsky.run_id": result.run_id, "minsky.society": "test",
        "minsky.organisation": "vote", "minsky.answer_kind": "number",
        "minsky.status": "ok", "minsky.answer": "42", "minsky.wall_s": 0,
        "minsky.usage.input_tokens": result.usage.prompt_tokens,
        "minsky.usage.output_tokens": result.usage.completion_tokens,
    }
    assert run.status.status_code == StatusCode.UNSET
    votes = [e for e in run.events if e.name == "minsky.vote"]
    assert sorted(e.attributes["minsky.answer"] for e in votes) == ["41", "42", "42"]
    (decision,) = [e for e in run.events if e.name == "minsky.decision"]
    assert decision.attributes["minsky.answer"] == "42"
    assert json.loads(decision.attributes["minsky.tally"]) == result.outcome.tally

    (rnd,) = named(spans, "round answer")
    assert dict(rnd.attributes or {}) == {
        "minsky.round": 1, "minsky.round.label": "answer", "minsky.round.asks": 3}
    call = named(spans, "chat fake:a")[0]
    attrs = dict(call.attributes or {})
    assert {k: v for k, v in attrs.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "scripted",
        "gen_ai.system": "scripted", "gen_ai.request.model": "fake:a",
        "gen_ai.request.temperature": 0.7, "gen_ai.request.top_p": 1.0,
        "gen_ai.request.max_tokens": 64, "gen_ai.request.top_k": 40, "gen_ai.request.seed": 3,
        "gen_ai.usage.input_tokens": attrs["gen_ai.usage.input_tokens"],
        "gen_ai.usage.output_tokens": 1, "gen_ai.response.finish_reasons": ("stop",),
    }
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["minsky.agent"].startswith("solver") and attrs["minsky.purpose"] == "answer"
    assert call.kind.name == "CLIENT"
    # every span belongs to one trace, and a child lies within its parent
    assert len({s.context.trace_id for s in spans}) == 1
    assert all(run.start_time <= s.start_time <= s.end_time <= run.end_time for s in spans)


async def test_a_debate_has_a_span_per_round(make_society: Callable[..., Society],
                                             tracer: Any,
                                             exporter: InMemorySpanExporter) -> None:
    society = make_society(society_dict(
        "debate", [{"name": "debater", "group": "debater", "count": 2}],
        params={"rounds": 2}))
    result = await traced(society, {"fake:a": FunctionBackend(lambda r: "The answer is 42.")},
                          tracer)
    assert result.status == "ok"
    assert tree(exporter.get_finished_spans()) == [["invoke_agent test", [
        ["round 1", [["chat fake:a"], ["chat fake:a"]]],
        ["round 2", [["chat fake:a"], ["chat fake:a"]]]]]]
    rounds = named(exporter.get_finished_spans(), "round 1")
    assert rounds[0].end_time <= named(exporter.get_finished_spans(),
                                       "round 2")[0].start_time


TEAM = """
name = "team-{word}"
organisation = "mixture"
model = "fake:x"
answer = "text"

[params]
layers = 1

[[agents]]
name = "proposer"
group = "proposer"
role = "You propose for team {word}."

[[agents]]
name = "aggregator"
group = "aggregator"
role = "You aggregate for team {word}."
"""

# one proposal: the critic has nothing to choose from, so a single round
PARENT = """
name = "parent"
organisation = "contest"
model = "fake:c"

[[agents]]
name = "team-a"
group = "proposer"
society = "alpha.toml"

[[agents]]
name = "critic"
group = "critic"
role = "You are a critic."
"""


def team_reply(request: ChatRequest) -> str:
    return ("Final plan: a blanket." if "aggregate" in request.messages[0].content
            else "an idea")


@pytest.fixture
def nested(tmp_path: Path) -> Society:
    (tmp_path / "alpha.toml").write_text(TEAM.format(word="alpha"), encoding="utf-8")
    (tmp_path / "parent.toml").write_text(PARENT, encoding="utf-8")
    return load(str(tmp_path / "parent.toml"))


NESTED_TREE = [["invoke_agent parent", [
    ["round propose", [
        ["invoke_agent team-alpha", [
            ["round layer 1", [["chat fake:x"]]],
            ["round aggregate", [["chat fake:x"]]]]],
        ["invoke_agent team-a"]]]]]]


async def test_a_sub_society_is_a_nested_run_linked_from_the_call(
        nested: Society, tracer: Any, exporter: InMemorySpanExporter) -> None:
    backends = {"fake:x": FunctionBackend(team_reply), "fake:c": FunctionBackend(lambda r: "A")}
    result = await traced(nested, backends, tracer)
    assert result.status == "ok"
    spans = exporter.get_finished_spans()
    assert tree(spans) == NESTED_TREE
    (child,) = named(spans, "invoke_agent team-alpha")
    (member,) = named(spans, "invoke_agent team-a")
    assert child.attributes["minsky.parent_run_id"] == result.run_id
    assert child.attributes["minsky.organisation"] == "mixture"
    assert member.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert member.attributes["minsky.backend"] == (
        f"society:team-alpha run {child.attributes['minsky.run_id']}")
    assert [link.context.span_id for link in member.links] == [child.context.span_id]
    # a text answer is content: not in the trace unless asked for
    assert "minsky.answer" not in (child.attributes or {})


def tool_society() -> Society:
    return from_dict({"name": "calc", "organisation": "vote", "model": "fake:t",
                      "agents": [{"name": "solver", "tools": ["Calculator"],
                                  "options": {"temperature": 0.0, "max_tokens": 64}}]},
                     "calc.toml")


def calculator(req: ChatRequest) -> str:
    return " so the answer is 395." if req.prefix else "Let me compute [Calculator(17*23+4)->"


async def test_a_tool_call_is_a_child_of_its_reply(tracer: Any,
                                                   exporter: InMemorySpanExporter) -> None:
    result = await traced(tool_society(), {"fake:t": FunctionBackend(calculator)}, tracer,
                          question="What is 17*23+4?")
    assert result.answer == "395"
    spans = exporter.get_finished_spans()
    assert tree(spans) == [["invoke_agent calc", [
        ["round answer", [["chat fake:t", [["execute_tool Calculator"]]]]]]]]
    (tool,) = named(spans, "execute_tool Calculator")
    assert dict(tool.attributes or {}) == {"gen_ai.operation.name": "execute_tool",
                                           "gen_ai.tool.name": "Calculator"}
    (call,) = named(spans, "chat fake:t")
    assert call.start_time <= tool.start_time <= tool.end_time <= call.end_time


class Failing(FunctionBackend):
    """Fails the calls of members whose role says "flaky"."""

    def answer(self, request: ChatRequest) -> ChatReply:
        if "flaky" in request.messages[0].content:
            return ChatReply("", finish_reason="error", error="ReadTimeout: no reply in 5 s")
        return super().answer(request)


async def test_a_failed_call_is_an_error_span(make_society: Callable[..., Society],
                                              tracer: Any,
                                              exporter: InMemorySpanExporter) -> None:
    society = make_society(society_dict(agents=[
        {"name": "good", "role": "You solve."}, {"name": "bad", "role": "You are flaky."}]))
    result = await traced(society, {"fake:a": Failing(lambda r: "42")}, tracer)
    assert result.status == "ok"
    spans = exporter.get_finished_spans()
    bad = next(s for s in spans if (s.attributes or {}).get("minsky.agent") == "bad")
    good = next(s for s in spans if (s.attributes or {}).get("minsky.agent") == "good")
    assert bad.status.status_code == StatusCode.ERROR
    assert bad.status.description == "ReadTimeout: no reply in 5 s"
    assert bad.attributes["error.type"] == "ReadTimeout"
    assert bad.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert good.status.status_code == StatusCode.UNSET
    assert "error.type" not in (good.attributes or {})


async def test_a_run_whose_calls_all_fail_is_an_error_run(
        make_society: Callable[..., Society], tracer: Any,
        exporter: InMemorySpanExporter) -> None:
    result = await traced(make_society(society_dict()), {"fake:a": ScriptedBackend([])}, tracer)
    assert result.status == "error"
    spans = exporter.get_finished_spans()
    (run,) = named(spans, "invoke_agent test")
    assert run.status.status_code == StatusCode.ERROR
    assert run.attributes["minsky.status"] == "error"
    (rnd,) = named(spans, "round answer")
    (note,) = [e for e in rnd.events if e.name == "minsky.error"]
    assert json.loads(note.attributes["minsky.errors"]) == ["scripted backend: no reply left"] * 3
    assert all(s.attributes["error.type"] == "_OTHER" for s in named(spans, "chat fake:a"))


# -- content capture ------------------------------------------------------------------------


CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions", "minsky.question"}


async def test_no_text_leaves_by_default(make_society: Callable[..., Society], tracer: Any,
                                         exporter: InMemorySpanExporter,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE, raising=False)
    await traced(make_society(society_dict()), {"fake:a": ScriptedBackend(["42"] * 3)}, tracer)
    await traced(tool_society(), {"fake:t": FunctionBackend(calculator)}, tracer)
    for span in exporter.get_finished_spans():
        assert not CONTENT_KEYS & set(span.attributes or {})
        assert "gen_ai.tool.call.arguments" not in (span.attributes or {})
        dumped = json.dumps(dict(span.attributes or {}), default=str)
        assert "6*7" not in dumped and "You are a careful" not in dumped


async def test_text_is_captured_when_asked(make_society: Callable[..., Society], tracer: Any,
                                           exporter: InMemorySpanExporter,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE, "true")
    one = make_society(society_dict(agents=[{"name": "solver", "role": ROLE}]))
    await traced(one, {"fake:a": ScriptedBackend(["42"])}, tracer)
    spans = exporter.get_finished_spans()
    (run,) = named(spans, "invoke_agent test")
    assert run.attributes["minsky.question"] == Q
    call = named(spans, "chat fake:a")[0]
    system = json.loads(call.attributes["gen_ai.system_instructions"])
    assert system[0]["type"] == "text" and "careful problem solver" in system[0]["content"]
    messages = json.loads(call.attributes["gen_ai.input.messages"])
    assert messages[-1]["role"] == "user" and Q in messages[-1]["parts"][0]["content"]
    assert json.loads(call.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "42"}],
         "finish_reason": "stop"}]

    exporter.clear()
    await traced(tool_society(), {"fake:t": FunctionBackend(calculator)}, tracer)
    (tool,) = named(exporter.get_finished_spans(), "execute_tool Calculator")
    assert tool.attributes["gen_ai.tool.call.arguments"] == "17*23+4"
    assert tool.attributes["gen_ai.tool.call.result"] == "395"


# -- serve continues the client's trace -----------------------------------------------------


def test_serve_continues_the_incoming_traceparent(
        tmp_path: Path, make_society: Callable[..., Society], tracer: Any,
        exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otel, "_observers", [TraceObserver(tracer)])
    trio = make_society(society_dict(name="trio"))
    log = RunLog(tmp_path / "serve.db")
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(lambda r: "42")}), log)
    app = create_app({"trio": trio}, runner, ServeSettings())
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        with BackgroundServer(app) as server:
            reply = httpx.post(f"{server.base_url}/chat/completions", timeout=20, json={
                "model": "trio", "messages": [{"role": "user", "content": Q}]},
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert reply.status_code == 200, reply.text
            plain = httpx.post(f"{server.base_url}/chat/completions", timeout=20, json={
                "model": "trio", "messages": [{"role": "user", "content": Q}]})
            assert plain.status_code == 200, plain.text
    finally:
        log.close()
    runs = named(exporter.get_finished_spans(), "invoke_agent trio")
    assert len(runs) == 2
    continued, fresh = sorted(runs, key=lambda s: s.start_time)
    assert format(continued.context.trace_id, "032x") == trace_id
    assert continued.parent is not None and continued.parent.is_remote
    assert format(continued.parent.span_id, "016x") == parent_id
    # without the header, a trace of its own
    assert fresh.parent is None and format(fresh.context.trace_id, "032x") != trace_id


def test_serve_ignores_traceparent_while_tracing_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otel, "_observers", [])
    assert otel.incoming({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                         "00f067aa0ba902b7-01"}) is None


# -- a logged run, replayed ------------------------------------------------------------------


async def test_a_logged_run_replays_as_the_same_trace(nested: Society, tracer: Any,
                                                      exporter: InMemorySpanExporter,
                                                      log: RunLog) -> None:
    backends = {"fake:x": FunctionBackend(team_reply), "fake:c": FunctionBackend(lambda r: "A")}
    result = await traced(nested, backends, tracer, log)
    live = exporter.get_finished_spans()
    exporter.clear()
    assert replay(log, result.run_id, tracer) == 2
    again = exporter.get_finished_spans()
    assert tree(live) == NESTED_TREE
    # a replayed sub-run starts when its log row was written: two sub-runs started in
    # the same round may be logged in the other order, so siblings compare as a set
    assert unordered(tree(again)) == unordered(tree(live))

    def attrs(spans: tuple[ReadableSpan, ...]) -> list[dict[str, Any]]:
        return sorted((dict(s.attributes or {}) | {"minsky.wall_s": 0} for s in spans),
                      key=lambda a: json.dumps(a, sort_keys=True, default=str))

    assert attrs(again) == attrs(live)
    (run,) = named(again, "invoke_agent parent")
    logged = log.get_run(result.run_id)
    assert run.start_time == int(logged["created_at"] * 1e9)
    assert run.end_time == int(logged["finished_at"] * 1e9)


async def test_economy_entries_in_the_log_replay_as_span_events(
        make_society: Callable[..., Society], tracer: Any, exporter: InMemorySpanExporter,
        log: RunLog) -> None:
    result = await traced(make_society(society_dict()), {"fake:a": ScriptedBackend(["42"] * 3)},
                          tracer, log)
    log.event(result.run_id, 1, "ledger", {"payer": "solver-1", "amount": 2.5})
    exporter.clear()
    replay(log, result.run_id, tracer)
    (rnd,) = named(exporter.get_finished_spans(), "round answer")
    (entry,) = [e for e in rnd.events if e.name == "minsky.ledger"]
    assert dict(entry.attributes or {}) == {"minsky.payer": "solver-1", "minsky.amount": 2.5,
                                            "minsky.round": 1}


def test_logs_export_needs_the_format(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["logs", "export", "01X", "--log", str(tmp_path / "l.db")])
    assert out.exit_code == 2
    assert out.output.strip() == "error: logs export: expected --otlp (the only export format)"


# -- switching it on, and off ---------------------------------------------------------------


@pytest.fixture
def no_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(otel, "_observers", [])
    for name in otel.ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    yield


def test_off_without_flag_or_endpoint(no_tracing: None) -> None:
    assert otel.start() is False
    assert Runner().observers == []


def test_an_endpoint_without_the_extra_changes_nothing(
        no_tracing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(otel, "installed", lambda: False)
    assert otel.start() is False
    assert Runner().observers == []


def test_otel_flag_without_the_extra_is_one_line(no_tracing: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otel, "installed", lambda: False)
    out = CliRunner().invoke(main, ["ask", Q, "-m", "echo:x", "--no-log", "--otel"])
    assert out.exit_code == 2
    assert out.output == "error: --otel needs OpenTelemetry: pip install 'minsky[otel]'\n"


def test_the_flag_or_the_endpoint_turns_it_on(no_tracing: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert otel.start() is True
    (observer,) = Runner().observers
    assert isinstance(observer, TraceObserver)
    assert otel.start(True) is True and len(otel.observers()) == 1  # once per process


def test_tracing_off_imports_no_opentelemetry(tmp_path: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from minsky.cli import main\n"
        "from minsky.runner import Runner\n"
        "from minsky.society import load\n"
        "r = asyncio.run(Runner().run(load('vote3', 'echo:x'), 'What is 2+2?'))\n"
        "assert r.status == 'ok', r.status\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
