"""What a tree of runs may still spend: tokens, model calls and time, drawn from the top.

A run spends from its own `Account`, and every account draws on its parent's: a member
that is a society, and a society asked through the `Ask` tool, run on a child of the
asking run's account. Every limit is therefore checked up the whole chain, so the top
run's `max_tokens`, `max_calls` and `timeout_s` hold for everything beneath it, however
deep the tree or wide the fan-out.

The bound on tokens: a round is sent only while each of its asks gets a share of at
least one token of what the whole chain has left (and the chain has calls left for it).
As it is sent, each ask to a model holds one call and the tokens it may cost: its prompt
(estimated, `prompt_estimate`) and its `max_tokens`, capped to its share. A reply settles
its hold with what it used. Holds are taken before the round's first await, so runs
beside it (the rest of a tree, concurrent `Ask` calls) see them before taking their own.
What a tree can spend past `max_tokens` is therefore one round: the round of the run
that crossed the line, plus what prompts cost beyond their estimates and what a backend
writes past `max_tokens` (a reply paused at a tool call lets its hold go while the
society it asks runs, so its first part is counted when the reply is done).

Reported usage is checked here too (`counted`): a server may claim a negative, missing
or absurd count, which would switch a budget off or overflow the log; such a count is
replaced by an estimate from the text (or clamped) and flagged.

A scoring call (token log-probabilities of a given text) spends the same way: it holds
an estimate of the tokens it evaluates (`score_estimate`) and settles with what they
were (`score_usage`), all of them prompt tokens, as the model reads them and writes none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from minsky.messages import ChatReply, ChatRequest, Usage

if TYPE_CHECKING:
    from minsky.backends.base import Scored

# far above any context window: one call reporting more is not believed (and sums of
# such counts stay within what SQLite's integers hold)
MAX_CALL_TOKENS = 1 << 24

Limit = Literal["max_tokens", "max_calls", "timeout"]


class Account:
    """The limits of one run, and what it and the runs beneath it have spent."""

    def __init__(self, max_tokens: int, max_calls: int, timeout_s: float,
                 parent: Account | None = None) -> None:
        self.parent = parent
        self.max_tokens, self.max_calls = max_tokens, max_calls
        self.deadline = time.perf_counter() + timeout_s
        if parent is not None:
            self.deadline = min(self.deadline, parent.deadline)
        self.usage = Usage()  # spent by this run and every run beneath it
        self.calls = 0  # model calls begun
        self.held = 0  # completion tokens promised to calls still in flight

    def child(self, max_tokens: int, max_calls: int, timeout_s: float) -> Account:
        """The account of a run beneath this one: its own limits, and never more than
        this account has left."""
        return Account(max_tokens, max_calls, timeout_s, parent=self)

    def chain(self) -> Iterator[Account]:
        """This account and its ancestors, up to the top run's."""
        account: Account | None = self
        while account is not None:
            yield account
            account = account.parent

    @property
    def tokens_left(self) -> int:
        return min(a.max_tokens - a.usage.total_tokens - a.held for a in self.chain())

    @property
    def calls_left(self) -> int:
        return min(a.max_calls - a.calls for a in self.chain())

    @property
    def seconds_left(self) -> float:
        return self.deadline - time.perf_counter()

    def stop(self) -> Limit | None:
        """The limit that has run out ("max_tokens", "max_calls", "timeout"), or None."""
        if self.tokens_left <= 0:
            return "max_tokens"
        if self.calls_left <= 0:
            return "max_calls"
        if self.seconds_left <= 0:
            return "timeout"
        return None

    def begin(self, calls: int, tokens: int) -> None:
        """Calls sent now, holding `tokens` of completion until they settle."""
        for a in self.chain():
            a.calls += calls
            a.held += tokens

    def settle(self, usage: Usage, held: int) -> None:
        """A call came back having used `usage`: its hold of `held` tokens is let go."""
        for a in self.chain():
            a.usage = a.usage + usage
            a.held -= held


def prompt_estimate(request: ChatRequest) -> int:
    """Tokens `request`'s prompt will likely cost, before a backend says."""
    return sum(_estimate(m.content) for m in request.messages) + _estimate(request.prefix)


def score_estimate(context: str, continuation: str) -> int:
    """Tokens scoring `continuation` after `context` will likely cost, before a backend says."""
    return _estimate(context) + _estimate(continuation)


def score_usage(context: str, continuation: str, scored: Scored) -> Usage:
    """What scoring one pair cost, as prompt tokens: the context and the continuation (a
    count the backend did not report, or an absurd one, is estimated from the text)."""
    ctx = scored.context_tokens
    if not 0 < ctx < MAX_CALL_TOKENS:
        ctx = _estimate(context)
    prompt = ctx + (min(len(scored.tokens), MAX_CALL_TOKENS) or _estimate(continuation))
    return Usage(prompt, 0, min(max(0, scored.cached_tokens), prompt))


def _estimate(text: str) -> int:
    # about four characters a token in the languages small models are asked in
    return (len(text) + 3) // 4


def _plausible(value: Any, text: Callable[[], str]) -> tuple[int, bool]:
    """A reported count made believable: (the count, whether it had to be changed).
    `text` gives what was counted, read only when the count is in doubt: most are not,
    and every call of every run comes through here."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return _estimate(text()), True
    if value >= MAX_CALL_TOKENS:  # at the cap: a backend clamped it already
        return MAX_CALL_TOKENS, True
    if value < 0 or (value == 0 and text().strip()):
        # nothing (or less) for a text that is there would switch the budget off
        return _estimate(text()), True
    return int(value), False


def counted(request: ChatRequest, reply: ChatReply) -> tuple[ChatReply, dict[str, Any] | None]:
    """`reply` with a usage that can be counted, and what was reported when it could not
    (None when it could)."""
    if reply.finish_reason == "error" and not reply.text:
        return reply, None  # a failed call reports nothing, and generated nothing
    u = reply.usage
    prompt, bad_prompt = _plausible(
        u.prompt_tokens, lambda: "".join(m.content for m in request.messages) + request.prefix)
    completion, bad_completion = _plausible(u.completion_tokens, lambda: reply.text)
    cached, bad_cached = _plausible(u.cached_tokens, str)
    if not (bad_prompt or bad_completion or bad_cached):
        return reply, None
    reported = {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                "cached_tokens": u.cached_tokens}
    usage = Usage(prompt, completion, min(cached, prompt))
    return replace(reply, usage=usage), {"reported": {k: _loggable(v) for k, v in reported.items()},
                   "counted": {"prompt_tokens": prompt, "completion_tokens": completion,
                               "cached_tokens": usage.cached_tokens}}


def _loggable(value: Any) -> Any:
    """A reported value as the log can hold it: a plain number, else a short string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value)[:40]
    if isinstance(value, int):
        # subtle: str() of a huge int is slow, and refused past 4,300 digits
        return value if value.bit_length() < 63 else f"~2**{value.bit_length() - 1}"
    return value if math.isfinite(value) and abs(value) < 2**63 else f"{value:.3g}"


__all__ = ["MAX_CALL_TOKENS", "Account", "Limit", "counted", "prompt_estimate", "score_estimate",
           "score_usage"]
