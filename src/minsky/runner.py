"""The runner: drives an organisation's generator, batches its asks, enforces budgets, logs.

For each round the organisation yields, the runner groups the asks by backend and sends
each group as one batch (all backends at once), so the members of a round run
concurrently. Before each round it checks the society's budgets (rounds, tokens, model
calls, wall-clock time); a run that would exceed one stops with that status, is logged
as such, and never hangs. Tokens, calls and time are drawn from an `Account` shared with
every run above this one (`minsky.account`): a member that is a society, or a society
asked through `Ask`, spends the top run's budget and keeps its deadline. Every call is
reported as it returns, as a typed event (`minsky.run_events`) that observers log or
show; a resumed run replays logged replies for identical requests instead of asking the
model again. Calls that no society makes (Toolformer's samples and scores, the
contamination test's scores) go through the same gate as a direct run (`Runner.direct`,
`minsky.direct`): logged, budgeted and replayed alike. A run beneath another (a member
that is a society, a society a tool asks) takes a private path that carries its parent,
the replies a resume hands down and the account it draws on; `Runner.run` has none of
these, and `beneath` hands others a runner bound to one parent.

The generator is pumped by `organisations.base.advance`, the same step `drive` (the
synchronous driver for tests and plugin authors) takes. `async with Runner(...)` closes
the backends on the way out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ulid import ULID

from minsky.account import Account, counted, prompt_estimate
from minsky.answers import AnswerKind
from minsky.backends.base import Backend, Scored, scoring
from minsky.backends.registry import Backends
from minsky.direct import DirectRun, Limits, open_direct
from minsky.errors import MinskyError
from minsky.inputs.safetext import valid
from minsky.messages import ChatReply, ChatRequest, Message, Usage
from minsky.organisations.base import (
    Ask,
    MemberAnswer,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Status,
    Task,
    Turn,
    advance,
    choice_letters,
)
from minsky.otel import observers as tracing_observers
from minsky.plugin_api import SocietyLike, ToolContext
from minsky.plugins import tool_types
from minsky.prompts import render
from minsky.run_events import (
    CallDone,
    Note,
    Observer,
    RoundStarted,
    RunEvent,
    RunFinished,
    RunStarted,
    emit,
    log_observer,
    progress_observer,
)
from minsky.runlog import RunLog, request_hash
from minsky.society import Society, load
from minsky.tools.base import Tool
from minsky.tools.calls import ARROW, CLOSE, ToolCall, resume_calls, with_call_stops

CALL_STOPS = (ARROW, CLOSE)


@dataclass
class RoundRecord:
    """What happened in one round: who was asked, and what each replied."""

    round: int
    label: str
    turns: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    """The result of one run; `to_dict` gives the stable `--json` shape."""

    run_id: str
    society: str
    question: str
    kind: AnswerKind
    status: Status
    outcome: Outcome
    usage: Usage
    wall_s: float
    rounds: list[RoundRecord]
    error: str | None = None

    @property
    def answer(self) -> str | None:
        return self.outcome.answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "society": self.society,
            "question": self.question,
            "kind": self.kind,
            "status": self.status,
            "answer": self.outcome.answer,
            "text": self.outcome.text,
            "members": [asdict(m) for m in self.outcome.members],
            "tally": self.outcome.tally,
            "detail": self.outcome.detail,
            "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens},
            "wall_s": round(self.wall_s, 3),
            "rounds": [asdict(r) for r in self.rounds],
            "error": self.error,
        }


@dataclass
class _RunState:
    """What the rounds of one run share, and what they found so far."""

    run_id: str
    society: Society
    task: Task
    backends: dict[str, Backend]
    replay: dict[str, deque[ChatReply]]
    tools: dict[str, Tool]
    observers: list[Observer]
    account: Account
    start: float = field(default_factory=time.perf_counter)
    rounds: list[RoundRecord] = field(default_factory=list)
    status: Status = "ok"
    error: str | None = None

    @property
    def usage(self) -> Usage:
        """What this run and every run beneath it used, as each reply came in."""
        return self.account.usage

    def emit(self, event: RunEvent) -> None:
        emit(self.observers, event)


@dataclass
class _Batch:
    """One round's requests as sent, and the replies as they come in."""

    asks: list[Ask]
    requests: list[ChatRequest] = field(default_factory=list)
    tools: list[dict[str, Tool]] = field(default_factory=list)
    replies: list[ChatReply | None] = field(default_factory=list)
    # how each ask is answered: "model", "society" (a sub-run) or "replayed" (from the log)
    ways: list[str] = field(default_factory=list)
    logged: dict[int, deque[ChatReply]] = field(default_factory=dict)  # each takes one
    replayed: dict[int, ChatReply] = field(default_factory=dict)
    # tokens each ask to a model holds from the account until its reply is in
    held: list[int] = field(default_factory=list)


class Runner:
    """Runs societies on tasks, with one shared pool of backends and one run log.

    `observers` receive every run's events; the run log, when given, is one of them, and
    so is the trace observer while tracing is on (`minsky.otel`).
    """

    def __init__(self, backends: Backends | None = None, log: RunLog | None = None,
                 observers: Sequence[Observer] = ()) -> None:
        self.backends = backends or Backends()
        self.log = log
        self.observers = list(observers) + tracing_observers()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.backends.aclose()

    def _observers(self, progress: Callable[[str], None] | None) -> list[Observer]:
        found = [log_observer(self.log)] if self.log else []
        return found + self.observers + ([progress_observer(progress)] if progress else [])

    def emit(self, event: RunEvent, progress: Callable[[str], None] | None = None) -> None:
        """Tell this runner's observers (the run log first) of `event`: how a run is
        watched, and how anyone annotates one (a `Note` on a run that has ended)."""
        emit(self._observers(progress), event)

    async def run(
        self,
        society: Society,
        question: str,
        kind: AnswerKind | None = None,
        resume: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run `society` on `question`; with `resume`, continue that logged run.

        `kind` None is the society's own `answer` ("auto": guessed from the question),
        settled once, as the run starts. A run beneath another goes through `beneath`.
        """
        return await self._run(society, question, kind, progress, resume=resume)

    def beneath(self, parent: str | None, account: Account | None = None) -> SubRunner:
        """A runner whose runs are logged beneath run `parent` and, given its `account`,
        draw on that run's budget and deadline (what a tool that asks a society runs
        through, and an economy's rulings)."""
        return SubRunner(self, parent, account)

    async def _run(
        self,
        society: Society,
        question: str,
        kind: AnswerKind | None = None,
        progress: Callable[[str], None] | None = None,
        *,
        resume: str | None = None,
        parent: str | None = None,
        replay: dict[str, deque[ChatReply]] | None = None,
        account: Account | None = None,
    ) -> RunResult:
        """`run`, and the private path of sub-runs: `parent` is the run id of the run this
        one serves (as a member, or through a tool); `replay` holds logged replies (by
        request hash) that a resumed parent hands down, or for a resume the replies its
        caller read from the log already (a cluster's driver); `account` is the account of
        the run this one serves, which it draws on."""
        question = valid(question)  # argv and files can hold lone surrogates
        # settled once per run: a kind its caller settled (a cluster's driver) is checked
        found = society.answer_kind(question, kind)
        st = self._start(society, question, found, resume, parent, replay, progress, account)
        gen = society.organisation.run(st.task, SocietyView(
            society.members(*_capabilities(st.backends)), society.params))
        outcome: Outcome | None = None
        try:
            outcome = await self._pump(gen, st)
        except (asyncio.CancelledError, KeyboardInterrupt):
            # cancelled as a run above it ran out of time: its deadline, which it shares
            st.status = "timeout" if st.account.seconds_left <= 0 else "interrupted"
            raise
        except Exception as exc:
            st.status, st.error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            gen.close()
            wall = time.perf_counter() - st.start
            outcome = outcome or _partial_outcome(st.rounds)
            st.emit(RunFinished(st.run_id, st.status, outcome, st.usage, wall))
        return RunResult(st.run_id, society.name, question, st.task.kind, st.status, outcome,
                         st.usage, wall, st.rounds, st.error)

    def _start(
        self, society: Society, question: str, kind: AnswerKind, resume: str | None,
        parent: str | None, replay: dict[str, deque[ChatReply]] | None,
        progress: Callable[[str], None] | None, above: Account | None = None,
    ) -> _RunState:
        """The state of a new (or resumed) run, announced to the observers."""
        task = Task(question, kind, choice_letters(question))
        backends = {a.model: self.backends.get(a.model) for a in society.agents
                    if a.society is None}
        if resume and replay is None:
            replay = self._logged(resume)
        run_id = resume or str(ULID())
        budget = society.config.budget
        account = (above.child if above is not None else Account)(
            budget.max_tokens, budget.max_calls, budget.timeout_s)
        st = _RunState(run_id, society, task, backends,
                       replay if replay is not None else {},
                       self._tools(society, run_id, account), self._observers(progress),
                       account)
        st.emit(RunStarted(st.run_id, society.name, society.config.model_dump(), question,
                           task.kind, {m: b.describe() for m, b in backends.items()},
                           parent, resumed=resume is not None, source=society.source))
        return st

    def _logged(self, resume: str) -> dict[str, deque[ChatReply]]:
        """The logged replies of run `resume` and its sub-runs, claimed for this resume."""
        if self.log is None:
            raise MinskyError("--resume needs the run log")
        return self.log.replies_for_resume(resume)

    async def _pump(self, gen: OrgRun, st: _RunState) -> Outcome | None:
        """Answer the organisation's rounds until it decides (or a budget stops it)."""
        turns: list[Turn] | None = None
        while isinstance(step := advance(gen, turns), Round):
            turns = await self._round(step, st)
            if turns is None:
                return None
        return step

    async def _round(self, rnd: Round, st: _RunState) -> list[Turn] | None:
        """Send one round within the budgets; None when the run must stop here."""
        n = len(st.rounds) + 1
        budget = st.society.config.budget
        stop = _over_budget(st, n)
        if stop is None:
            # each ask's share of what the whole tree has left
            cap = st.account.tokens_left // max(1, len(rnd.asks))
            batch = self._prepare(rnd, st, cap)
            stop = _begin(batch, st, cap)
        if stop is None:
            st.emit(RoundStarted(st.run_id, n, rnd.label, len(rnd.asks)))
            try:
                replies = await asyncio.wait_for(self._dispatch(batch, st, cap, n),
                                                 timeout=max(0.001, st.account.seconds_left))
            except TimeoutError:
                stop = "timeout"
                st.error = (f"round {n} ({rnd.label}) ran out of the society's "
                            f"timeout_s = {budget.timeout_s:g} s (or a parent run's)")
            finally:
                # calls that never came back let go of what they held
                st.account.settle(Usage(), sum(batch.held))
        if stop is not None:
            st.status = stop
            if stop == "timeout" and st.error is None:
                st.error = (f"the society's timeout_s = {budget.timeout_s:g} s (or a parent "
                            f"run's) ran out before round {n} ({rnd.label})")
            st.emit(Note(st.run_id, n, "budget", {"status": stop, "round": rnd.label}))
            return None
        turns = [Turn(a, r) for a, r in zip(rnd.asks, replies, strict=True)]
        st.rounds.append(RoundRecord(n, rnd.label, [_turn_record(t) for t in turns]))
        failed = [r.error for r in replies if r.finish_reason == "error"]
        optional = all(a.purpose == "repair" for a in rnd.asks)
        if failed and len(failed) == len(replies) and not optional:
            # members (sub-societies, say) that failed as the tree's budget ran out: the
            # run stopped at that limit, and says so
            st.status, st.error = st.account.stop() or "error", failed[0]
            st.emit(Note(st.run_id, n, "error", {"errors": failed}))
            return None
        return turns

    def _tools(self, society: Society, run_id: str | None = None,
               account: Account | None = None) -> dict[str, Tool]:
        """The tools a society's agents use, built from their validated options; they
        serve run `run_id` and spend from its `account`."""
        types = tool_types()
        base = Path(society.source).parent
        context = ToolContext(self.beneath(run_id, account),
                              base if base.is_dir() else Path.cwd(), load, run_id, account)
        return {name: types[name].create(opts, context)
                for name, opts in society.tool_options.items()}

    def _prepare(self, rnd: Round, st: _RunState, cap: int) -> _Batch:
        """The round's requests, each with its member's options, tools and the token cap,
        and how each will be answered."""
        batch = _Batch(rnd.asks, replies=[None] * len(rnd.asks))
        by_agent = {a.name: a for a in st.society.agents}
        claimed: dict[int, int] = {}  # logged replies this round takes, by deque
        for i, ask in enumerate(rnd.asks):
            if ask.agent not in by_agent:
                raise MinskyError(f"organisation asked unknown member {ask.agent!r}")
            agent = by_agent[ask.agent]
            backend = st.backends.get(agent.model)
            request = _request(ask, agent.options, backend, cap)
            # inline calls need a backend that can continue a reply after the result
            usable = backend is not None and backend.capabilities.prefill
            tools = {t: st.tools[t] for t in agent.tools} if usable else {}
            batch.tools.append(tools)
            batch.requests.append(_with_tools(request, tools) if tools else request)
            # hashing a request costs a JSON dump: only a resumed run has replies to match
            logged = (st.replay.get(request_hash(ask.agent, batch.requests[i], agent.model))
                      if st.replay else None)
            if logged and claimed.get(id(logged), 0) < len(logged):
                claimed[id(logged)] = claimed.get(id(logged), 0) + 1
                batch.ways.append("replayed")
                batch.logged[i] = logged
            else:
                batch.ways.append("society" if agent.society is not None else "model")
            request = batch.requests[i]
            batch.held.append(prompt_estimate(request) + request.options.max_tokens
                              if batch.ways[i] == "model" else 0)
        return batch

    async def _dispatch(self, batch: _Batch, st: _RunState, cap: int, n: int
                        ) -> list[ChatReply]:
        """Send the round's asks, one batch per backend, all backends concurrently; a
        member that is a society runs as a sub-run. Each reply is reported, and settled
        with the account, as it is in, so a timeout elsewhere loses nothing."""
        asks = batch.asks
        by_agent = {a.name: a for a in st.society.agents}

        def done(i: int, reply: ChatReply, where: str, calls: Sequence[ToolCall] = (),
                 child: str | None = None) -> None:
            ask = asks[i]
            if batch.ways[i] != "society":  # a sub-run settled its own calls
                if batch.ways[i] == "model":
                    reply, flagged = counted(batch.requests[i], reply)
                    if flagged is not None:
                        st.emit(Note(st.run_id, n, "usage", {"agent": ask.agent, **flagged}))
                st.account.settle(reply.usage, batch.held[i])
                batch.held[i] = 0
            batch.replies[i] = reply
            st.emit(CallDone(st.run_id, n, i, ask.agent, by_agent[ask.agent].model,
                             ask.purpose, where, batch.requests[i], reply, list(calls), child))

        groups: dict[str, list[int]] = {}
        subs: list[int] = []
        for i, ask in enumerate(asks):
            if batch.ways[i] == "replayed":
                done(i, batch.replayed[i], "replayed")
            elif batch.ways[i] == "society":
                subs.append(i)
            else:
                groups.setdefault(by_agent[ask.agent].model, []).append(i)
        await _all(
            *(self._send(st.backends[model], idx, batch, st, done)
              for model, idx in groups.items()),
            *(self._delegate(i, batch, st, cap, done) for i in subs))
        return [r for r in batch.replies if r is not None]

    async def _send(self, backend: Backend, idx: list[int], batch: _Batch, st: _RunState,
                    done: Callable[..., None]) -> None:
        """One backend's share of the round as one batch; tool calls resumed per member."""
        got = await backend.complete([batch.requests[i] for i in idx])

        async def finish(i: int, reply: ChatReply) -> None:
            calls: list[ToolCall] = []
            if batch.tools[i] and reply.stop in CALL_STOPS:
                # a reply paused at a tool call lets its hold go: a society its tool asks
                # draws on the same budget (what the reply wrote so far counts once in)
                st.account.settle(Usage(), batch.held[i])
                batch.held[i] = 0
                # each member resumes on its own: one member's call holds up no other
                reply, calls = await resume_calls(backend, batch.requests[i], reply,
                                                  batch.tools[i], st.society.config.tool_limits,
                                                  st.account.deadline)
            done(i, reply, backend.describe(), calls)

        await _all(*(finish(i, r) for i, r in zip(idx, got, strict=True)))

    async def _delegate(self, i: int, batch: _Batch, st: _RunState, cap: int,
                        done: Callable[..., None]) -> None:
        """A member that is a whole society: it reads the ask, runs, replies its outcome."""
        agent = next(a for a in st.society.agents if a.name == batch.asks[i].agent)
        assert agent.society is not None
        users = [m.content for m in batch.requests[i].messages if m.role == "user"]
        # the first user message states the task; a later one is what is asked now
        question = "\n\n".join(dict.fromkeys([users[0], users[-1]])) if users else ""
        sub = await self._run(_capped(agent.society, cap), question, parent=st.run_id,
                              replay=st.replay, account=st.account)
        text = sub.outcome.text or sub.outcome.answer or ""
        if sub.status == "ok":
            reply = ChatReply(text, sub.usage, sub.wall_s, "stop")
        elif text:
            # cut short by a budget but with something to say: like a member that hit
            # max_tokens
            reply = ChatReply(text, sub.usage, sub.wall_s, "length")
        else:
            reply = ChatReply(text, sub.usage, sub.wall_s, "error",
                              f"sub-society {sub.society} stopped: {sub.status}")
        done(i, reply, f"society:{sub.society} run {sub.run_id}", (), sub.run_id)

    def direct(self, model: str, label: str, *, question: str | None = None,
               parent: str | None = None, resume: str | None = None,
               account: Account | None = None, limits: Limits | None = None,
               progress: Callable[[str], None] | None = None) -> DirectRun:
        """A run of calls to `model` that no society makes (`async with` it), logged as a
        run of its own named `label`, budgeted and replayed on resume like a society's
        calls (`minsky.direct`); `account` is that of a run it serves, which it draws on."""
        return open_direct(self.backends.get(model), model, label,
                           partial(emit, self._observers(progress)), self.log,
                           question=question, parent=parent, resume=resume, account=account,
                           limits=limits)

    async def call(self, model: str, requests: list[ChatRequest], label: str,
                   parent: str | None = None) -> list[ChatReply]:
        """Chat calls to one model that no society makes, as a direct run of one batch
        named `label`; returns the replies in order."""
        async with self.direct(model, label, parent=parent) as run:
            return await run.chat(requests)

    async def score(self, model: str, items: list[tuple[str, str]],
                    probes: Sequence[str] = (), label: str = "score",
                    parent: str | None = None, account: Account | None = None
                    ) -> list[Scored]:
        """Token log-probabilities of each (context, continuation) on `model`
        (`Scoring.score`), as a direct run of one batch named `label`: logged, drawn
        from `account` when given, refused by a backend that cannot score."""
        scoring(self.backends.get(model))  # refused before a run is begun
        async with self.direct(model, label, parent=parent, account=account) as run:
            return await run.score(items, probes)


@dataclass(frozen=True)
class SubRunner:
    """Runs societies beneath run `parent` of `runner`, drawing on its `account` when
    given (`Runner.beneath`); a `minsky.plugin_api.SocietyRunner`, which tools are handed."""

    runner: Runner
    parent: str | None
    account: Account | None = None

    async def run(self, society: SocietyLike, question: str,
                  kind: AnswerKind | None = None) -> RunResult:
        """Run `society` (one `minsky.society` loaded) on `question` beneath the parent."""
        if not isinstance(society, Society):
            raise TypeError(f"expected a minsky.society.Society, got {type(society).__name__}")
        return await self.runner._run(society, question, kind, parent=self.parent,
                                      account=self.account)


async def _all(*steps: Awaitable[None]) -> None:
    """Await every step, and raise the first failure only once all have ended.

    subtle: plain `gather` ends as soon as one step fails or is cancelled, leaving the
    others running; a sub-run cancelled by its parent's deadline would then write its
    end to the log after its parent has returned (or never)."""
    for outcome in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


def _capabilities(backends: dict[str, Backend]) -> tuple[dict[str, bool], dict[str, bool]]:
    """Model → whether its backend honours grammars, and whether it continues a reply."""
    return ({m: b.capabilities.grammar for m, b in backends.items()},
            {m: b.capabilities.prefill for m, b in backends.items()})


def _over_budget(st: _RunState, n: int) -> Status | None:
    if n > st.society.config.budget.max_rounds:
        return "max_rounds"
    return st.account.stop()


def _begin(batch: _Batch, st: _RunState, cap: int) -> Status | None:
    """Take the round's calls and completion tokens from the account, or the limit that
    stops it: a share under one token, or more calls than are left.

    subtle: this runs before the round's first await, so runs beside this one (siblings
    of a tree, concurrent Ask calls) see what it took before they take their own."""
    calls = sum(way != "society" for way in batch.ways)
    if cap < 1:
        return "max_tokens"
    if calls > st.account.calls_left:
        return "max_calls"
    st.account.begin(calls, sum(batch.held))
    batch.replayed = {i: logged.popleft() for i, logged in batch.logged.items()}
    return None


def _with_tools(request: ChatRequest, tools: dict[str, Tool]) -> ChatRequest:
    """The request with the tools explained in its system message, each tool's worked
    exchange as an earlier turn, and call stop strings."""
    guide = render("tools", tools=[tools[name] for name in sorted(tools)])
    messages = list(request.messages)
    if messages and messages[0].role == "system":
        messages[0] = Message("system", f"{messages[0].content}\n\n{guide}")
    else:
        messages.insert(0, Message("system", guide))
    demos = [demo for name in sorted(tools) if (demo := tools[name].demo)]
    messages[1:1] = [m for q, a in demos for m in (Message("user", q), Message("assistant", a))]
    return with_call_stops(replace(request, messages=messages))


def _request(ask: Ask, options: Any, backend: Backend | None, cap: int) -> ChatRequest:
    opts = ask.options or options
    if cap < opts.max_tokens:
        opts = opts.model_copy(update={"max_tokens": max(1, cap)})
    grammar = ask.grammar if backend is not None and backend.capabilities.grammar else None
    prefix = ask.prefix if backend is not None and backend.capabilities.prefill else ""
    return ChatRequest(list(ask.messages), opts, grammar=grammar, prefix=prefix)


def _capped(society: Society, cap: int) -> Society:
    """A sub-society whose token budget is no larger than its parent's share for the ask."""
    budget = society.config.budget
    if budget.max_tokens <= cap:
        return society
    config = society.config.model_copy(
        update={"budget": budget.model_copy(update={"max_tokens": max(1, cap)})}
    )
    return replace(society, config=config)


def _turn_record(turn: Turn) -> dict[str, Any]:
    r = turn.reply
    return {
        "agent": turn.ask.agent,
        "purpose": turn.ask.purpose,
        "text": r.text,
        "finish_reason": r.finish_reason,
        "error": r.error,
        "prompt_tokens": r.usage.prompt_tokens,
        "completion_tokens": r.usage.completion_tokens,
        "latency_s": round(r.latency_s, 3),
    }


def _partial_outcome(rounds: list[RoundRecord]) -> Outcome:
    """What a stopped run had when it stopped: the members' last replies, no decision."""
    members: dict[str, MemberAnswer] = {}
    for rec in rounds:
        for t in rec.turns:
            members[t["agent"]] = MemberAnswer(t["agent"], None, t["text"], rec.round)
    return Outcome(None, list(members.values()), detail={"stopped": True})
