"""A logged run as a trace after the fact (`minsky logs export RUN_ID --otlp`).

The run and its sub-society runs are read back from the run log as the typed events the
runner emitted, ordered by the times the log recorded, and fed to the same trace
observer a live run has, its clock set to each event's logged time. What the log keeps
and the events do not (economy ledger entries, rulings) comes as span events too; a run's
span ends at its last logged entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Tracer

from minsky.messages import ChatReply, ChatRequest, Message, Options, Usage
from minsky.organisations.base import MemberAnswer, Outcome
from minsky.otel.observer import TraceObserver
from minsky.run_events import CallDone, Note, RoundStarted, RunEvent, RunFinished, RunStarted
from minsky.runlog import RunLog
from minsky.tools.calls import ToolCall

# at one logged time, a run starts before its rounds, a round before its calls, …
_ORDER = {RunStarted: 0, RoundStarted: 1, CallDone: 2, Note: 3, RunFinished: 4}


@dataclass
class _Clock:
    ns: int = 0

    def __call__(self) -> int:
        return self.ns


def replay(log: RunLog, run_id: str, tracer: Tracer, capture: bool | None = None) -> int:
    """Send run `run_id` and the runs nested in it as one trace; how many runs it held."""
    timed: list[tuple[float, int, int, RunEvent]] = []
    family = [run_id]
    for rid in family:
        run = log.get_run(rid)
        family.extend(c["id"] for c in run["children"])
        timed.extend(_events(log, run))
    clock = _Clock()
    observe = TraceObserver(tracer, capture, clock)
    for at, _, _, event in sorted(timed, key=lambda t: t[:3]):
        clock.ns = int(at * 1e9)
        observe(event)
    return len(family)


def _events(log: RunLog, run: dict[str, Any]) -> list[tuple[float, int, int, RunEvent]]:
    """One logged run's events, each with its logged time (and a tie-breaking order)."""
    rid, models = run["id"], run["models"] or {}
    out: list[tuple[float, int, int, RunEvent]] = []

    def add(at: float, seq: int, event: RunEvent) -> None:
        out.append((at, _ORDER[type(event)], seq, event))

    add(run["created_at"], 0, RunStarted(rid, run["society"], run["society_config"] or {},
                                         run["question"], run["kind"], models,
                                         run["parent_id"]))
    for r in run["rounds"]:
        asks = sum(1 for c in run["calls"] if c["round"] == r["round"])
        add(r["started_at"], r["round"], RoundStarted(rid, r["round"], r["label"], asks))
    by_backend = {describe: spec for spec, describe in models.items()}
    for i, c in enumerate(run["calls"]):
        tools = [ToolCall(t["tool"], t["input"], t["result"], bool(t["error"]), t["latency_s"])
                 for t in run["tool_calls"] if t["call_id"] == c["id"]]
        backend = c["backend"]
        model = (backend.rpartition(" run ")[0] if c["child_id"]
                 else by_backend.get(backend, next(iter(models), "")))
        add(c["created_at"], i, CallDone(rid, c["round"], c["idx"], c["agent"], model,
                                         c["purpose"], backend, _request(c["request"]),
                                         _reply(c), tools, c["child_id"]))
    for i, e in enumerate(log.notes(rid)):
        add(e["created_at"], i, Note(rid, e["round"], e["kind"], e["data"]))
    # a run whose process died has no end in the log: its trace ends at its last event;
    # an economy settles a run after it ends, and its ledger entries belong in its trace
    end = max([t[0] for t in out] + [run["finished_at"] or 0.0])
    add(end, 0, RunFinished(rid, run["status"], _outcome(run["outcome"]),
                            Usage(run["prompt_tokens"] or 0, run["completion_tokens"] or 0),
                            run["wall_s"] or 0.0))
    return out


def _request(data: dict[str, Any]) -> ChatRequest:
    return ChatRequest([Message(m["role"], m["content"]) for m in data["messages"]],
                       Options.model_validate(data["options"]), data.get("grammar"),
                       data.get("json_schema"), data.get("prefix", ""))


def _reply(c: dict[str, Any]) -> ChatReply:
    usage = Usage(c["prompt_tokens"], c["completion_tokens"], c["cached_tokens"])
    return ChatReply(c["text"], usage, c["latency_s"], c["finish_reason"], c["error"])


def _outcome(data: dict[str, Any] | None) -> Outcome:
    if not data:
        return Outcome(None)
    members = [MemberAnswer(m["name"], m["answer"], m["text"], m.get("round", 1))
               for m in data.get("members", [])]
    return Outcome(data.get("answer"), members, data.get("tally"), data.get("detail") or {},
                   data.get("text"), data.get("reads") or {})
