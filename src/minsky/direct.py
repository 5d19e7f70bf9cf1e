"""Model calls that no society makes, through the same gate as a society's calls.

Toolformer annotation samples candidate calls and scores texts; the contamination test
scores orders of a benchmark. None of these is a round of a society, but each is a model
call all the same, so a `DirectRun` makes them as a run of its own in the run log, named
after what asks them, each batch a round, and takes them through what every call of a
society run goes through:

- **the budget**: each batch holds its calls and the tokens it may cost from an
  `Account` (the run's own limits, and those of a run above it where there is one), and
  settles them as it returns; a batch the account cannot pay is not sent (`BudgetStop`);
- **the log**: every chat reply (`CallDone`) and every score (`ScoreDone`) is an event
  that the run log and the other observers receive, with its token counts;
- **replay**: a resumed run (`resume=RUN_ID`) answers a request it logged before with
  the logged reply or score, instead of asking the model again.

`Runner.direct` opens one (`async with`); `Runner.call` and `Runner.score` are runs of
one batch. A direct run's limits default to none: what asks (a command, a tool of a
society) gives them, or the account of the run it serves.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ulid import ULID

from minsky.account import Account, counted, prompt_estimate, score_estimate, score_usage
from minsky.backends.base import Backend, Scored, scoring
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.organisations.base import Outcome, Status
from minsky.run_events import (
    CallDone,
    Note,
    RoundStarted,
    RunEvent,
    RunFinished,
    RunStarted,
    ScoreDone,
)
from minsky.runlog import RunLog, request_hash, score_hash, scores_for_resume

T = TypeVar("T")
R = TypeVar("R")
UNLIMITED = sys.maxsize  # tokens or calls: no limit of the run's own


class BudgetStop(MinskyError):
    """A direct run's batch was not sent (or not waited for): a limit ran out."""

    def __init__(self, label: str, limit: Status) -> None:
        super().__init__(f"{label}: the run's {limit} ran out (or a parent run's)")
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    """A direct run's own limits (the run above it, if any, may hold it to less)."""

    max_tokens: int = UNLIMITED
    max_calls: int = UNLIMITED
    timeout_s: float = math.inf


@dataclass
class DirectRun:
    """One logged run of direct calls to `model`'s `backend`; use it as `async with`."""

    backend: Backend
    model: str
    label: str
    question: str
    emit: Callable[[RunEvent], None]
    account: Account
    parent: str | None = None
    resumed: bool = False
    run_id: str = field(default_factory=lambda: str(ULID()))
    # a resumed run's logged replies and scores, by request hash, in the order logged
    replies: dict[str, deque[ChatReply]] = field(default_factory=dict)
    scores: dict[str, deque[Scored]] = field(default_factory=dict)
    rounds: int = 0
    start: float = field(default_factory=time.perf_counter)

    async def __aenter__(self) -> DirectRun:
        self.emit(RunStarted(self.run_id, self.label, {}, self.question, "text",
                             {self.model: self.backend.describe()}, self.parent,
                             resumed=self.resumed))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        *_: object) -> None:
        status: Status = "ok"
        if isinstance(exc, BudgetStop):
            status = exc.limit
        elif isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            status = "timeout" if self.account.seconds_left <= 0 else "interrupted"
        elif exc is not None:
            status = "error"
        self.emit(RunFinished(self.run_id, status, Outcome(None), self.account.usage,
                              time.perf_counter() - self.start))

    def _begin(self, n: int, label: str, asks: int, tokens: int, short: bool) -> None:
        """Begin round `n` (of `asks` calls holding `tokens`), or stop before it, as a
        society's round does, at the limit that is out (`short`: too few tokens left)."""
        self._take(n, label, asks, tokens, short)
        self.rounds = n
        self.emit(RoundStarted(self.run_id, n, label, asks))

    def _take(self, n: int, label: str, calls: int, tokens: int, short: bool) -> None:
        """Hold `calls` and `tokens` from the account, or stop at the limit that is out
        (`short`: the tokens left are too few for the batch)."""
        stop = self.account.stop()
        if stop is None and short:
            stop = "max_tokens"
        if stop is None and calls > self.account.calls_left:
            stop = "max_calls"
        if stop is not None:
            self.emit(Note(self.run_id, n, "budget", {"status": stop, "round": label}))
            raise BudgetStop(self.label, stop)
        self.account.begin(calls, tokens)

    async def _timed(self, n: int, label: str, work: Awaitable[T]) -> T:
        """`work`, within what is left of the run's time."""
        left = self.account.seconds_left
        if math.isinf(left):
            return await work
        try:
            return await asyncio.wait_for(work, timeout=max(0.001, left))
        except TimeoutError:
            self.emit(Note(self.run_id, n, "budget", {"status": "timeout", "round": label}))
            raise BudgetStop(self.label, "timeout") from None

    async def chat(self, requests: Sequence[ChatRequest], purpose: str | None = None,
                       label: str | None = None) -> list[ChatReply]:
        """Replies to `requests` in order, as one round (`label`, else the purpose): a
        resumed run's logged replies are replayed, the rest asked in one batch."""
        purpose = purpose or self.label
        label = label or purpose
        n = self.rounds + 1
        # each ask's share of what the tree has left, as in a society's round (and, as
        # there, the request capped to it is the one logged, hashed and replayed)
        cap = self.account.tokens_left // max(1, len(requests))
        sent = [replace(r, options=r.options.model_copy(update={"max_tokens": max(1, cap)}))
                if cap < r.options.max_tokens else r for r in requests]
        logged = _claim([self.replies.get(request_hash(self.label, r, self.model))
                         for r in sent] if self.replies else [None] * len(sent))
        asked = [i for i, q in enumerate(logged) if q is None]
        held = {i: prompt_estimate(sent[i]) + sent[i].options.max_tokens for i in asked}
        self._begin(n, label, len(sent), sum(held.values()), cap < 1)
        replies = [q.popleft() if q is not None else None for q in logged]
        for i, reply in enumerate(replies):
            if reply is not None:
                self.account.settle(reply.usage, 0)
                self.emit(CallDone(self.run_id, n, i, self.label, self.model, purpose,
                                   "replayed", sent[i], reply))
        try:
            got = (await self._timed(n, label, self.backend.complete([sent[i] for i in asked]))
                   if asked else [])
        finally:
            self.account.settle(Usage(), sum(held.values()))
        for i, reply in zip(asked, got, strict=True):
            reply, flagged = counted(sent[i], reply)
            if flagged is not None:
                self.emit(Note(self.run_id, n, "usage", {"agent": self.label, **flagged}))
            self.account.settle(reply.usage, 0)
            replies[i] = reply
            self.emit(CallDone(self.run_id, n, i, self.label, self.model, purpose,
                               self.backend.describe(), sent[i], reply))
        return [r for r in replies if r is not None]

    async def score(self, items: Sequence[tuple[str, str]], probes: Sequence[str] = (),
                    purpose: str | None = None, label: str | None = None) -> list[Scored]:
        """Log-probabilities of each (context, continuation)'s continuation tokens, and of
        each probe before every one of them (`Scoring.score`), as one round: a resumed
        run's logged scores are replayed, the rest scored in one batch."""
        scorer = scoring(self.backend)
        purpose = purpose or self.label
        label = label or purpose
        probes = list(probes)
        n = self.rounds + 1
        logged = _claim([self.scores.get(score_hash(self.label, self.model, *item, probes))
                         for item in items] if self.scores else [None] * len(items))
        asked = [i for i, q in enumerate(logged) if q is None]
        held = {i: score_estimate(*items[i]) for i in asked}
        # a score costs what its text is: one the tree cannot pay for is not begun
        need = sum(held.values())
        self._begin(n, label, len(items), need, need > self.account.tokens_left)
        found = [q.popleft() if q is not None else None for q in logged]

        def done(i: int, scored: Scored, usage: Usage, where: str, latency_s: float) -> None:
            self.account.settle(usage, 0)
            self.emit(ScoreDone(self.run_id, n, i, self.label, self.model, purpose, where,
                                items[i], probes, scored, usage, latency_s))

        for i, scored in enumerate(found):
            if scored is not None:
                done(i, scored, Usage(scored.context_tokens + len(scored.tokens), 0,
                                      scored.cached_tokens), "replayed", 0.0)
        start = time.perf_counter()
        try:
            got = (await self._timed(n, label, scorer.score([items[i] for i in asked], probes))
                   if asked else [])
        finally:
            self.account.settle(Usage(), sum(held.values()))
        took = time.perf_counter() - start
        for i, scored in zip(asked, got, strict=True):
            found[i] = scored
            done(i, scored, score_usage(*items[i], scored), scorer.describe(), took)
        return [s for s in found if s is not None]


def _claim(logged: Sequence[deque[R] | None]) -> list[deque[R] | None]:
    """For each ask of a batch, the logged answers it takes the next of (None: it is asked
    anew); identical asks in one batch take one each, while there are enough."""
    claimed: dict[int, int] = {}
    out: list[deque[R] | None] = []
    for q in logged:
        if q and claimed.get(id(q), 0) < len(q):
            claimed[id(q)] = claimed.get(id(q), 0) + 1
            out.append(q)
        else:
            out.append(None)
    return out


def open_direct(backend: Backend, model: str, label: str, emit: Callable[[RunEvent], None],
                log: RunLog | None, *, question: str | None = None, parent: str | None = None,
                resume: str | None = None, account: Account | None = None,
                limits: Limits | None = None) -> DirectRun:
    """A direct run (not yet started: `async with` starts it); with `resume`, that logged
    run again, replaying what it logged."""
    limits = limits or Limits()
    mine = (account.child if account is not None else Account)(
        limits.max_tokens, limits.max_calls, limits.timeout_s)
    run = DirectRun(backend, model, label, question if question is not None else label,
                    emit, mine, parent)
    if resume is not None:
        if log is None:
            raise MinskyError("--resume needs the run log")
        run.run_id, run.resumed = resume, True
        run.replies = log.replies_for_resume(resume)  # claims the run for this resume
        run.scores = scores_for_resume(log, resume)
    return run


__all__ = ["BudgetStop", "DirectRun", "Limits", "open_direct"]
