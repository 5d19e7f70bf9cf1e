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
from typing import Any

from ulid import ULID

from minsky.backends.base import Backend
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Usage
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
    detect_kind,
)
from minsky.plugins import BackendSettings, backend_types
from minsky.runlog import RunLog, request_hash
from minsky.society import Society


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
        answer_kind = kind or (cfg.answer if cfg.answer != "auto" else detect_kind(question))
        task = Task(question, answer_kind)  # type: ignore[arg-type]
        backends = {
            a.model: self.backends.get(a.model) for a in society.agents if a.society is None
        }
        constrained = {m: b.capabilities.grammar for m, b in backends.items()}
        view = SocietyView(society.members(constrained), society.params)
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
                    self._event(run_id, n, "budget", {"status": status, "round": rnd.label})
                    break
                cap = (cfg.budget.max_tokens - usage.total_tokens) // max(1, len(rnd.asks))
                if progress:
                    progress(f"round {n}: {rnd.label} ({len(rnd.asks)} asks)")
                if self.log:
                    self.log.start_round(run_id, n, rnd.label)
                try:
                    replies = await asyncio.wait_for(
                        self._dispatch(rnd, by_agent, backends, cap, replay, run_id, n),
                        timeout=max(0.001, deadline - time.perf_counter()),
                    )
                except TimeoutError:
                    status = "timeout"
                    self._event(run_id, n, "budget", {"status": status, "round": rnd.label})
                    break
                for reply in replies:
                    usage = usage + reply.usage
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

    async def _dispatch(
        self,
        rnd: Round,
        by_agent: dict[str, Any],
        backends: dict[str, Backend],
        cap: int,
        replay: dict[str, deque[ChatReply]],
        run_id: str,
        n: int,
    ) -> list[ChatReply]:
        """Send the round's asks, one batch per backend, all backends concurrently."""
        requests: list[ChatRequest] = []
        replies: list[ChatReply | None] = [None] * len(rnd.asks)
        groups: dict[str, list[int]] = {}
        for i, ask in enumerate(rnd.asks):
            if ask.agent not in by_agent:
                raise MinskyError(f"organisation asked unknown member {ask.agent!r}")
            agent = by_agent[ask.agent]
            requests.append(_request(ask, agent.options, backends.get(agent.model), cap))
            logged = replay.get(request_hash(ask.agent, requests[i], agent.model))
            if logged:
                self._record(run_id, n, i, ask, agent.model, requests[i], logged.popleft(),
                             "replayed", replies)
            else:
                groups.setdefault(agent.model, []).append(i)

        async def send(model: str, idx: list[int]) -> None:
            got = await backends[model].complete([requests[i] for i in idx])
            # logged as soon as this backend answers, so a timeout elsewhere loses nothing
            for i, reply in zip(idx, got, strict=True):
                self._record(run_id, n, i, rnd.asks[i], model, requests[i], reply,
                             backends[model].describe(), replies)

        async def delegate(i: int) -> None:
            # a member that is a whole society: it reads the ask, runs, replies its outcome
            agent = by_agent[rnd.asks[i].agent]
            users = [m.content for m in requests[i].messages if m.role == "user"]
            # the first user message states the task; a later one is what is asked now
            question = "\n\n".join(dict.fromkeys([users[0], users[-1]])) if users else ""
            sub_society = _capped(agent.society, cap)
            sub = await self.run(sub_society, question, parent=run_id, replay=replay)
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
            self._record(run_id, n, i, rnd.asks[i], agent.model, requests[i], reply,
                         f"society:{sub.society} run {sub.run_id}", replies)

        jobs = []
        for model, idx in groups.items():
            if model in backends:
                jobs.append(send(model, idx))
            else:
                jobs.extend(delegate(i) for i in idx)
        await asyncio.gather(*jobs)
        return [r for r in replies if r is not None]

    def _record(
        self, run_id: str, n: int, i: int, ask: Ask, model: str, request: ChatRequest,
        reply: ChatReply, where: str, replies: list[ChatReply | None],
    ) -> None:
        """Keep a reply for the organisation and commit it to the log at once."""
        replies[i] = reply
        if self.log:
            self.log.log_call(run_id, n, i, ask.agent, model, ask.purpose, where, request,
                              reply, replayed=where == "replayed")


def _request(ask: Ask, options: Any, backend: Backend | None, cap: int) -> ChatRequest:
    opts = ask.options or options
    if cap < opts.max_tokens:
        opts = opts.model_copy(update={"max_tokens": max(1, cap)})
    grammar = ask.grammar if backend is not None and backend.capabilities.grammar else None
    return ChatRequest(list(ask.messages), opts, grammar=grammar)


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
