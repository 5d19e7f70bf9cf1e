"""The backend interface: one async method over a batch of chat requests.

A backend answers every request of a batch and returns the replies in order. It may run
them concurrently (the embedded engine decodes them as parallel sequences; the HTTP
backend sends them as concurrent requests). Capabilities are flags so organisations can
ask for a grammar-constrained answer only where it will be honoured.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond plain chat completion."""

    grammar: bool = False  # honours ChatRequest.grammar (GBNF)
    json_schema: bool = False  # honours ChatRequest.json_schema
    logprobs: bool = False  # can score token log-probabilities
    prefix_cache: bool = False  # reuses a cached prompt prefix across calls
    prefill: bool = False  # continues a reply from ChatRequest.prefix


@dataclass
class Scored:
    """Log-probabilities (natural log) of a continuation's tokens, and of probe tokens."""

    tokens: list[int]
    logprobs: list[float]
    probes: list[list[float]]  # [position][probe]: before each continuation token

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

    async def score(
        self, items: list[tuple[str, str]], probes: list[str] | tuple[str, ...] = ()
    ) -> list[Scored]:
        """Log-probabilities of each (context, continuation) pair's continuation tokens,
        and of each single-token probe before every continuation token.

        Only a backend whose `capabilities.logprobs` is set implements it; any other
        refuses with one clear error (`cannot_score`)."""
        raise self.cannot_score()

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
