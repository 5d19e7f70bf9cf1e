"""The runner: drives an organisation's generator, batches its asks, enforces budgets, logs.

For each round the organisation yields, the runner groups the asks by backend and sends
each group as one batch (all backends at once), so the members of a round run
concurrently. Before each round it checks the society's budgets (rounds, tokens,
wall-clock time); a run that would exceed one stops with that status, is logged as such,
and never hangs. Every call is logged as it returns; a resumed run replays logged replies
for identical requests instead of asking the model again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ulid import ULID

from minsky.backends.base import Backend
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Message, Usage
from minsky.models import MODELS
from minsky.organisations.base import (
    Ask,
    MemberAnswer,
    Outcome,
    Round,
    SocietyView,
    Status,
    Task,
    Turn,
    choice_letters,
    detect_kind,
)
from minsky.plugins import (
    BackendSettings,
    TokenAccount,
    ToolContext,
    backend_types,
    tool_types,
)
from minsky.prompts import render
from minsky.runlog import RunLog, request_hash
from minsky.safetext import valid
from minsky.society import AgentSpec, Society
from minsky.tools.base import Tool
from minsky.tools.calls import ARROW, CLOSE, ToolCall, ToolLimits, resume_calls, with_call_stops

CALL_STOPS = (ARROW, CLOSE)


class Backends:
    """One backend per model spec, shared by every agent (and society) that uses it.

    `overrides` maps a model spec to a ready backend; tests use it to run societies on
    the scripted fakes.
    """

    def __init__(
        self,
        settings: BackendSettings | None = None,
        overrides: dict[str, Backend] | None = None,
    ) -> None:
        self.settings = settings or BackendSettings()
        self._made: dict[str, Backend] = dict(overrides or {})

    def get(self, spec: str) -> Backend:
        if spec not in self._made:
            types = backend_types()
            scheme, sep, rest = spec.partition(":")
            if sep and scheme in types and spec not in MODELS:
                self._made[spec] = types[scheme].create(rest, self.settings)
            else:
                self._made[spec] = types["llama"].create(spec, self.settings)
        return self._made[spec]

    async def aclose(self) -> None:
        for backend in self._made.values():
            await backend.aclose()


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
    kind: str
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
            "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens},
            "wall_s": round(self.wall_s, 3),
            "rounds": [asdict(r) for r in self.rounds],
            "error": self.error,
        }


@dataclass
class _RunState:
    """What the rounds of one run share."""

    run_id: str
    by_agent: dict[str, AgentSpec]
    backends: dict[str, Backend]
    replay: dict[str, deque[ChatReply]]
    tools: dict[str, Tool]
    limits: ToolLimits


class Runner:
    """Runs societies on tasks, with one shared pool of backends and one run log."""

    def __init__(self, backends: Backends | None = None, log: RunLog | None = None) -> None:
        self.backends = backends or Backends()
        self.log = log

    async def run(
        self,
        society: Society,
        question: str,
        kind: str | None = None,
        resume: str | None = None,
        progress: Any = None,
        parent: str | None = None,
        replay: dict[str, deque[ChatReply]] | None = None,
    ) -> RunResult:
        """Run `society` on `question`; with `resume`, continue that logged run.

        `parent` is the run id of the society this one serves as a member of; `replay`
        holds logged replies (by request hash) that a resumed parent hands down.
        """
        cfg = society.config
        question = valid(question)  # argv and files can hold lone surrogates
        answer_kind = kind or (cfg.answer if cfg.answer != "auto" else detect_kind(question))
        task = Task(question, answer_kind, choice_letters(question))  # type: ignore[arg-type]
        backends = {
            a.model: self.backends.get(a.model) for a in society.agents if a.society is None
        }
        constrained = {m: b.capabilities.grammar for m, b in backends.items()}
        prefill = {m: b.capabilities.prefill for m, b in backends.items()}
        view = SocietyView(society.members(constrained, prefill), society.params)
        by_agent = {a.name: a for a in society.agents}

        replay = replay if replay is not None else {}
        if resume:
            if self.log is None:
                raise MinskyError("--resume needs the run log")
            replay = self.log.replies_for_resume(resume)
            self.log.restart_run(resume)
            run_id = resume
        else:
            run_id = str(ULID())
            if self.log:
                self.log.start_run(
                    run_id, cfg.name, cfg.model_dump(), question, answer_kind,
                    {m: b.describe() for m, b in backends.items()}, parent,
                )

        account = TokenAccount(cfg.budget.max_tokens)
        state = _RunState(run_id, by_agent, backends, replay,
                          self._tools(society, run_id, account), cfg.tool_limits)
        start = time.perf_counter()
        deadline = start + cfg.budget.timeout_s
        usage = Usage()
        rounds: list[RoundRecord] = []
        status: Status = "ok"
        error: str | None = None
        outcome: Outcome | None = None
        gen = society.organisation.run(task, view)
        turns: list[Turn] | None = None
        try:
            while True:
                try:
                    rnd = next(gen) if turns is None else gen.send(turns)
                except StopIteration as stop:
                    outcome = stop.value
                    break
                n = len(rounds) + 1
                stop_status = self._over_budget(society, n, usage, deadline)
                if stop_status:
                    status = stop_status
                    if status == "timeout":
                        error = (f"the society's timeout_s = {cfg.budget.timeout_s:g} s ran "
                                 f"out before round {n} ({rnd.label})")
                    self._event(run_id, n, "budget", {"status": status, "round": rnd.label})
                    break
                cap = (cfg.budget.max_tokens - usage.total_tokens) // max(1, len(rnd.asks))
                if progress:
                    progress(f"round {n}: {rnd.label} ({len(rnd.asks)} asks)")
                if self.log:
                    self.log.start_round(run_id, n, rnd.label)
                try:
                    replies = await asyncio.wait_for(
                        self._dispatch(rnd, state, cap, n),
                        timeout=max(0.001, deadline - time.perf_counter()),
                    )
                except TimeoutError:
                    status = "timeout"
                    error = (f"round {n} ({rnd.label}) ran out of the society's "
                             f"timeout_s = {cfg.budget.timeout_s:g} s")
                    self._event(run_id, n, "budget", {"status": status, "round": rnd.label})
                    break
                for reply in replies:
                    usage = usage + reply.usage
                # societies its members asked through tools spent this run's tokens too
                usage = usage + Usage(completion_tokens=account.take())
                account.run_total = usage.total_tokens
                turns = [Turn(a, r) for a, r in zip(rnd.asks, replies, strict=True)]
                rounds.append(RoundRecord(n, rnd.label, [_turn_record(t) for t in turns]))
                failed = [r.error for r in replies if r.finish_reason == "error"]
                optional = all(a.purpose == "repair" for a in rnd.asks)
                if failed and len(failed) == len(replies) and not optional:
                    status, error = "error", failed[0]
                    self._event(run_id, n, "error", {"errors": failed})
                    break
        except (asyncio.CancelledError, KeyboardInterrupt):
            status = "interrupted"
            raise
        except Exception as exc:
            status, error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            gen.close()
            wall = time.perf_counter() - start
            if outcome is None:
                outcome = _partial_outcome(rounds)
            if self.log:
                self.log.finish_run(
                    run_id, status, outcome.answer, outcome.to_dict(), usage, wall
                )
        return RunResult(
            run_id, cfg.name, question, answer_kind, status, outcome, usage, wall, rounds, error
        )

    @staticmethod
    def _over_budget(society: Society, n: int, usage: Usage, deadline: float) -> Status | None:
        budget = society.config.budget
        if n > budget.max_rounds:
            return "max_rounds"
        if usage.total_tokens >= budget.max_tokens:
            return "max_tokens"
        if time.perf_counter() >= deadline:
            return "timeout"
        return None

    def _event(self, run_id: str, n: int, kind: str, data: dict[str, Any]) -> None:
        if self.log:
            self.log.event(run_id, n, kind, data)

    def _tools(self, society: Society, run_id: str | None = None,
               account: TokenAccount | None = None) -> dict[str, Tool]:
        """The tools a society's agents use, built from their validated options."""
        types = tool_types()
        base = Path(society.source).parent
        context = ToolContext(self, base if base.is_dir() else Path.cwd(), run_id, account)
        return {name: types[name].create(opts, context)
                for name, opts in society.tool_options.items()}

    async def _dispatch(self, rnd: Round, st: _RunState, cap: int, n: int) -> list[ChatReply]:
        """Send the round's asks, one batch per backend, all backends concurrently."""
        requests: list[ChatRequest] = []
        replies: list[ChatReply | None] = [None] * len(rnd.asks)
        tools: list[dict[str, Tool]] = []
        groups: dict[str, list[int]] = {}
        for i, ask in enumerate(rnd.asks):
            if ask.agent not in st.by_agent:
                raise MinskyError(f"organisation asked unknown member {ask.agent!r}")
            agent = st.by_agent[ask.agent]
            backend = st.backends.get(agent.model)
            request = _request(ask, agent.options, backend, cap)
            # inline calls need a backend that can continue a reply after the result
            usable = backend is not None and backend.capabilities.prefill
            tools.append({t: st.tools[t] for t in agent.tools} if usable else {})
            requests.append(_with_tools(request, tools[i]) if tools[i] else request)
            # hashing a request costs a JSON dump: only a resumed run has replies to match
            logged = (st.replay.get(request_hash(ask.agent, requests[i], agent.model))
                      if st.replay else None)
            if logged:
                self._record(st, n, i, ask, requests[i], logged.popleft(), "replayed", replies)
            else:
                groups.setdefault(agent.model, []).append(i)

        async def send(model: str, idx: list[int]) -> None:
            backend = st.backends[model]
            got = await backend.complete([requests[i] for i in idx])

            async def finish(i: int, reply: ChatReply) -> None:
                calls: list[ToolCall] = []
                if tools[i] and reply.stop in CALL_STOPS:
                    # each member resumes on its own: one member's call holds up no other
                    reply, calls = await resume_calls(
                        backend, requests[i], reply, tools[i], st.limits
                    )
                # logged as soon as it is done, so a timeout elsewhere loses nothing
                self._record(st, n, i, rnd.asks[i], requests[i], reply, backend.describe(),
                             replies, calls)

            await asyncio.gather(*(finish(i, r) for i, r in zip(idx, got, strict=True)))

        async def delegate(i: int) -> None:
            # a member that is a whole society: it reads the ask, runs, replies its outcome
            agent = st.by_agent[rnd.asks[i].agent]
            assert agent.society is not None
            users = [m.content for m in requests[i].messages if m.role == "user"]
            # the first user message states the task; a later one is what is asked now
            question = "\n\n".join(dict.fromkeys([users[0], users[-1]])) if users else ""
            sub_society = _capped(agent.society, cap)
            sub = await self.run(sub_society, question, parent=st.run_id, replay=st.replay)
            text = sub.outcome.text or sub.outcome.answer or ""
            if sub.status == "ok":
                reply = ChatReply(text, sub.usage, sub.wall_s, "stop")
            elif text:
                # cut short by a budget but with something to say: like a member that
                # hit max_tokens
                reply = ChatReply(text, sub.usage, sub.wall_s, "length")
            else:
                reply = ChatReply(text, sub.usage, sub.wall_s, "error",
                                  f"sub-society {sub.society} stopped: {sub.status}")
            self._record(st, n, i, rnd.asks[i], requests[i], reply,
                         f"society:{sub.society} run {sub.run_id}", replies)

        jobs = []
        for model, idx in groups.items():
            if model in st.backends:
                jobs.append(send(model, idx))
            else:
                jobs.extend(delegate(i) for i in idx)
        await asyncio.gather(*jobs)
        return [r for r in replies if r is not None]

    def _record(
        self, st: _RunState, n: int, i: int, ask: Ask, request: ChatRequest,
        reply: ChatReply, where: str, replies: list[ChatReply | None],
        calls: list[ToolCall] | None = None,
    ) -> None:
        """Keep a reply for the organisation and commit it (and its tool calls) to the log."""
        replies[i] = reply
        if self.log:
            model = st.by_agent[ask.agent].model
            call_id = self.log.log_call(st.run_id, n, i, ask.agent, model, ask.purpose, where,
                                        request, reply, replayed=where == "replayed")
            if calls:
                self.log.log_tool_calls(st.run_id, call_id, ask.agent, calls)


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
