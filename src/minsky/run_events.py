"""What a run reports as it goes: typed events, and the observers that log and show them.

The runner emits one event per step (a run starts, a round starts, a call returns, a
scoring call returns, a budget or error note, a run finishes) and knows nothing of where
they go. The run log is one observer (`log_observer`), a progress line on the terminal
another (`progress_observer`); a web view or a metrics sink would be a third. Whoever
annotates a run after the fact (an economy's ledger, a served conversation) emits a `Note`
to the same observers (`Runner.emit`): nothing writes to the log behind them.

A scoring call (`ScoreDone`: how likely a model finds a given text, what Toolformer
annotation and the contamination test are made of) is logged beside the chat calls: the
log observer writes it (`minsky.runlog.log_score`), and a resumed run replays it instead
of scoring again. The SQL for all of it is in `minsky.runlog`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from minsky.backends.base import Scored
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.organisations.base import Outcome, Status
from minsky.runlog import RunLog, log_score


@dataclass(frozen=True)
class RunStarted:
    """A run begins (or, with `resumed`, begins again after a stop)."""

    run_id: str
    society: str
    config: dict[str, Any]
    question: str
    kind: str
    models: dict[str, str]
    parent: str | None = None
    resumed: bool = False
    source: str | None = None  # where the society came from (its file), for a resume


@dataclass(frozen=True)
class RoundStarted:
    run_id: str
    round: int
    label: str
    asks: int


@dataclass(frozen=True)
class CallDone:
    """One member's reply, as soon as it is in (`where`: the backend, "replayed", or the
    sub-society run that produced it, "society:NAME run ID"); `child` is the id of that
    sub-society run, the link a reader follows."""

    run_id: str
    round: int
    index: int
    agent: str
    model: str
    purpose: str
    where: str
    request: ChatRequest
    reply: ChatReply
    tool_calls: list[Any] = field(default_factory=list)
    child: str | None = None


@dataclass(frozen=True)
class ScoreDone:
    """One scoring call's result (`Scoring.score` of one context and continuation), as
    soon as it is in; `where` is the backend, or "replayed". `usage` counts the tokens
    it evaluated as prompt tokens; `latency_s` is its batch's."""

    run_id: str
    round: int
    index: int
    agent: str
    model: str
    purpose: str
    where: str
    item: tuple[str, str]
    probes: list[str]
    scored: Scored
    usage: Usage
    latency_s: float


@dataclass(frozen=True)
class Note:
    """Something the run decided or someone noted about it: a budget stop ("budget"),
    every call failed ("error"), an economy's ledger entry ("ledger") or ruling
    ("ruling"), a served conversation ("conversation"); `round` None: the whole run."""

    run_id: str
    round: int | None
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: Status
    outcome: Outcome
    usage: Usage
    wall_s: float


RunEvent = RunStarted | RoundStarted | CallDone | ScoreDone | Note | RunFinished
Observer = Callable[[RunEvent], None]


def emit(observers: Iterable[Observer], event: RunEvent) -> None:
    """Tell every observer of `event`, in order (the run log first, where it is one)."""
    for observe in observers:
        observe(event)


def log_observer(log: RunLog) -> Observer:
    """Commit each event to the run log as it happens."""

    def observe(e: RunEvent) -> None:
        if isinstance(e, RunStarted):
            if e.resumed:
                log.restart_run(e.run_id)
            else:
                log.start_run(e.run_id, e.society, e.config, e.question, e.kind, e.models,
                              e.parent)
                if e.parent is None and e.source:
                    log.record_source(e.run_id, e.source)
        elif isinstance(e, RoundStarted):
            log.start_round(e.run_id, e.round, e.label)
        elif isinstance(e, CallDone):
            call_id = log.log_call(e.run_id, e.round, e.index, e.agent, e.model, e.purpose,
                                   e.where, e.request, e.reply, replayed=e.where == "replayed",
                                   child=e.child)
            if e.tool_calls:
                log.log_tool_calls(e.run_id, call_id, e.agent, e.tool_calls)
        elif isinstance(e, ScoreDone):
            log_score(log, e.run_id, (e.round, e.index), e.agent, e.purpose, e.model, e.where,
                      e.item, e.probes, e.scored, e.usage, e.latency_s,
                      replayed=e.where == "replayed")
        elif isinstance(e, Note):
            log.event(e.run_id, e.round, e.kind, e.data)
        else:
            log.finish_run(e.run_id, e.status, e.outcome.answer, e.outcome.to_dict(), e.usage,
                           e.wall_s)

    return observe


def progress_observer(say: Callable[[str], None]) -> Observer:
    """One line per round: "round 2: vote (5 asks)"."""

    def observe(e: RunEvent) -> None:
        if isinstance(e, RoundStarted):
            say(f"round {e.round}: {e.label} ({e.asks} asks)")

    return observe

