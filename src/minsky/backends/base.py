"""The backend interface: one async method over a batch of chat requests.

A backend answers every request of a batch and returns the replies in order. It may run
them concurrently (the embedded engine decodes them as parallel sequences; the HTTP
backend sends them as concurrent requests). Capabilities are flags so organisations can
ask for a grammar-constrained answer only where it will be honoured.

Scoring (token log-probabilities of a given text) is a capability of its own, declared
as typed protocols: `Scoring` (what the contamination test needs) and `TextScoring` (what
Toolformer annotation needs besides: the prompt text and the tokens the model sees).
`scoring` and `text_scoring` give a backend as one, or refuse with one clear error.
Every scoring call goes through the runner (`Runner.score`), which logs and budgets it.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlparse

from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Message


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond plain chat completion."""

    grammar: bool = False  # honours ChatRequest.grammar (GBNF)
    json_schema: bool = False  # honours ChatRequest.json_schema
    logprobs: bool = False  # can score token log-probabilities
    prefix_cache: bool = False  # reuses a cached prompt prefix across calls
    prefill: bool = False  # continues a reply from ChatRequest.prefix


NO_REAL_MODELS = "MINSKY_NO_REAL_MODELS"  # set (to anything): real models are refused


def check_real_model(what: str, url: str | None = None) -> None:
    """Refuse to load a real model (or to reach a model server off this machine) while
    `MINSKY_NO_REAL_MODELS` is set: the unit tests set it, so none reaches a real model
    unless it is marked `real`. A server on loopback is a test's own fake, and allowed."""
    if not os.environ.get(NO_REAL_MODELS):
        return
    # imported here: serve.connections reads POSIX limits (`resource`) at import
    from minsky.serve.connections import is_loopback

    if url is not None and is_loopback(urlparse(url).hostname or ""):
        return
    raise MinskyError(f"{what}: real models are switched off ({NO_REAL_MODELS} is set; a "
                      "test that needs one is marked `real`)")


@dataclass
class Scored:
    """Log-probabilities (natural log) of a continuation's tokens, and of probe tokens."""

    tokens: list[int]
    logprobs: list[float]
    probes: list[list[float]]  # [position][probe]: before each continuation token
    # tokens of the context evaluated with it, and how many of those came from a cache
    # (0: not reported; the runner then estimates them from the text)
    context_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


class Backend(ABC):
    """Answers batches of chat requests. Subclasses implement `complete`."""

    name: str = "backend"
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """Answer every request; the i-th reply belongs to the i-th request.

        A failure of one request is reported in its reply (finish_reason "error"),
        never by raising, so one bad call cannot lose the rest of the batch.
        """

    def cannot_score(self) -> MinskyError:
        """The error of a backend asked to score that cannot."""
        return MinskyError(
            f"backend {self.describe()} cannot give token log-probabilities; scoring "
            "(the contamination test, Toolformer annotation, option scoring) needs a local "
            "model run in-process (a shipped model name or a GGUF path)")

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources (threads, sockets, model memory)."""

    def describe(self) -> str:
        """A short human-readable description for logs."""
        return self.name


@runtime_checkable
class Scoring(Protocol):
    """A backend that gives token log-probabilities (`Capabilities.logprobs` set)."""

    capabilities: Capabilities

    async def score(self, items: list[tuple[str, str]], probes: Sequence[str] = ()
                    ) -> list[Scored]:
        """Log-probabilities of each (context, continuation) pair's continuation tokens,
        and of each single-token probe before every continuation token."""
        ...

    def describe(self) -> str: ...


@runtime_checkable
class TextScoring(Scoring, Protocol):
    """A scoring backend that also shows the text and the tokens its model sees."""

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of `messages`."""
        ...

    def tokenize_plain(self, text: str) -> list[int]:
        """Tokens of `text` on its own, without a BOS token."""
        ...

    def pieces(self, text: str) -> list[str]:
        """The text of each token of `text`."""
        ...


def scoring(backend: Backend) -> Scoring:
    """`backend` as a scoring backend, or the error that it cannot score."""
    if not (backend.capabilities.logprobs and isinstance(backend, Scoring)):
        raise backend.cannot_score()
    return backend


def text_scoring(backend: Backend) -> TextScoring:
    """`backend` as a scoring backend that shows its text and tokens, or the error."""
    if not (backend.capabilities.logprobs and isinstance(backend, TextScoring)):
        raise backend.cannot_score()
    return backend
