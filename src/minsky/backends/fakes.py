"""Test doubles that ship with minsky: backends that answer without a model.

- `ScriptedBackend` replays canned replies, per agent or in order, and records every
  request it was sent, so tests can assert exactly who was asked what.
- `FunctionBackend` answers each request with a Python function of its messages.
- `EchoBackend` answers with the last user message.
- `ScoringFake` answers like `FunctionBackend` and scores texts too (`Scoring`), with a
  Python function of the text before each token: a stand-in for the embedded model.

All of them count tokens as whitespace-separated words, so budgets can be tested.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from minsky.backends.base import Backend, Capabilities, Scored
from minsky.messages import ChatReply, ChatRequest, Message, Usage


def _words(text: str) -> int:
    return len(text.split())


def _reply(request: ChatRequest, text: str) -> ChatReply:
    prompt = sum(_words(m.content) for m in request.messages) + _words(request.prefix)
    hits = [(text.index(s), s) for s in request.options.stop if s and s in text]
    stop = min(hits)[1] if hits else None
    if hits:
        text = text[: min(hits)[0]]
    words = text.split()
    finish = "stop"
    if len(words) > request.options.max_tokens:
        text, finish = " ".join(words[: request.options.max_tokens]), "length"
    return ChatReply(text, Usage(prompt, _words(text)), 0.0, finish, None, stop)  # type: ignore[arg-type]


class _Recording(Backend):
    """Shared bookkeeping: every batch received, in order."""

    def __init__(self, delay_s: float = 0.0, capabilities: Capabilities | None = None) -> None:
        self.batches: list[list[ChatRequest]] = []
        self.delay_s = delay_s
        if capabilities is not None:
            self.capabilities = capabilities

    @property
    def requests(self) -> list[ChatRequest]:
        """All requests received, flattened in arrival order."""
        return [r for batch in self.batches for r in batch]

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        self.batches.append(list(requests))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [self.answer(r) for r in requests]

    def answer(self, request: ChatRequest) -> ChatReply:
        raise NotImplementedError


class ScriptedBackend(_Recording):
    """Replays canned replies.

    `replies` is either a list (served in order to whoever asks) or a dict from a key to a
    list of replies; the key is looked up in the request's system message (an agent's
    name or role text), so each agent gets its own script. Running out is an error reply,
    which makes a test that asks more than it scripted fail visibly.
    """

    name = "scripted"
    capabilities = Capabilities(grammar=True, json_schema=True, prefill=True)

    def __init__(
        self,
        replies: Iterable[str] | dict[str, Iterable[str]],
        delay_s: float = 0.0,
        capabilities: Capabilities | None = None,
    ) -> None:
        super().__init__(delay_s, capabilities)
        if isinstance(replies, dict):
            self._by_key = {k: deque(v) for k, v in replies.items()}
            self._queue: deque[str] | None = None
        else:
            self._by_key = {}
            self._queue = deque(replies)

    def answer(self, request: ChatRequest) -> ChatReply:
        queue = self._queue
        if queue is None:
            system = " ".join(m.content for m in request.messages if m.role == "system")
            # longest key first, so "solver-10" is not taken for "solver-1"
            for key in sorted(self._by_key, key=len, reverse=True):
                if key in system:
                    queue = self._by_key[key]
                    break
        if not queue:
            return ChatReply("", finish_reason="error", error="scripted backend: no reply left")
        return _reply(request, queue.popleft())


class FunctionBackend(_Recording):
    """Answers each request with `fn(request) -> str`."""

    name = "function"
    capabilities = Capabilities(grammar=True, json_schema=True, prefill=True)

    def __init__(
        self,
        fn: Callable[[ChatRequest], str],
        delay_s: float = 0.0,
        capabilities: Capabilities | None = None,
    ) -> None:
        super().__init__(delay_s, capabilities)
        self.fn = fn

    def answer(self, request: ChatRequest) -> ChatReply:
        return _reply(request, self.fn(request))


class EchoBackend(_Recording):
    """Answers with the content of the last user message."""

    name = "echo"

    def answer(self, request: ChatRequest) -> ChatReply:
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return _reply(request, last)


_PIECE = re.compile(r"\s*\S+|\s+")


class ScoringFake(FunctionBackend):
    """Answers with `fn(request)` and scores texts (`minsky.backends.base.TextScoring`).

    A token is a word with the white space before it; `logprob(before, token)` gives the
    log-probability of `token` after the text `before` (the context and the tokens of the
    continuation before it). `scored` records every batch of (context, continuation)
    pairs it was asked to score.
    """

    name = "scoring"
    capabilities = Capabilities(grammar=True, json_schema=True, logprobs=True, prefill=True)

    def __init__(
        self,
        logprob: Callable[[str, str], float] = lambda before, token: -1.0,
        fn: Callable[[ChatRequest], str] = lambda request: "",
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(fn, delay_s)
        self.logprob = logprob
        self.scored: list[list[tuple[str, str]]] = []

    def pieces(self, text: str) -> list[str]:
        return _PIECE.findall(text)

    def tokenize_plain(self, text: str) -> list[int]:
        return list(range(len(self.pieces(text))))

    def render(self, messages: list[Message]) -> str:
        return "".join(f"{m.role}: {m.content}\n" for m in messages)

    async def score(self, items: list[tuple[str, str]], probes: Sequence[str] = ()
                    ) -> list[Scored]:
        self.scored.append(list(items))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for context, continuation in items:
            tokens = self.pieces(continuation)
            befores = [context + "".join(tokens[:i]) for i in range(len(tokens))]
            out.append(Scored(
                list(range(len(tokens))),
                [self.logprob(b, t) for b, t in zip(befores, tokens, strict=True)],
                [[self.logprob(b, p) for p in probes] for b in befores],
                len(self.pieces(context))))
        return out
