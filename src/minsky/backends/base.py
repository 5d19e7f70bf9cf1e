"""The backend interface: one async method over a batch of chat requests.

A backend answers every request of a batch and returns the replies in order. It may run
them concurrently (the embedded engine decodes them as parallel sequences; the HTTP
backend sends them as concurrent requests). Capabilities are flags so organisations can
ask for a grammar-constrained answer only where it will be honoured.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from minsky.messages import ChatReply, ChatRequest


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond plain chat completion."""

    grammar: bool = False  # honours ChatRequest.grammar (GBNF)
    json_schema: bool = False  # honours ChatRequest.json_schema
    logprobs: bool = False  # can score token log-probabilities
    prefix_cache: bool = False  # reuses a cached prompt prefix across calls
    prefill: bool = False  # continues a reply from ChatRequest.prefix


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

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources (threads, sockets, model memory)."""

    def describe(self) -> str:
        """A short human-readable description for logs."""
        return self.name
