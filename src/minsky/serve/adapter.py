"""The one place `minsky serve` touches the runner: run a society, observe it as it goes.

Everything the server knows about a run in progress comes through `run_society`, as
`Progress` records: a round starting (the runner's `progress` callback) and each member's
reply as the runner logs it (the moment a reply is final: after its tool calls, the
replies of a backend batch together). When the runner grows typed run events, only this
module changes.

Each request gets a light Runner of its own over the server's shared backends and log:
the backends (what batches members across requests) are shared; what is per request is
the conversation added to every prompt and the observer of the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minsky.backends.base import Backend
from minsky.messages import ChatReply, ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Backends, Runner, RunResult
from minsky.serve.conversation import Conversation, ConversationBackend
from minsky.society import Society


@dataclass(frozen=True)
class Progress:
    """Something that happened in a run: `kind` is "round" or "reply"."""

    kind: str
    text: str
    agent: str = ""
    purpose: str = ""
    run_id: str = ""
    nested: bool = False  # a member of a sub-society (a society that is a member)


Observer = Callable[[Progress], None]


class _ConversationBackends(Backends):
    """The shared backends, each seen through one request's conversation."""

    def __init__(self, shared: Backends, conversation: Conversation) -> None:
        super().__init__(shared.settings)
        self.shared = shared
        self.conversation = conversation

    def get(self, spec: str) -> Backend:
        backend = self.shared.get(spec)
        if self.conversation.is_plain:
            return backend
        if spec not in self._made:
            self._made[spec] = ConversationBackend(backend, self.conversation)
        return self._made[spec]

    async def aclose(self) -> None:
        """The backends belong to the server, which closes them when it stops."""


class _ObservedLog(RunLog):
    """The server's run log (same connection), telling an observer what it records."""

    def __init__(self, shared: RunLog, observe: Observer, conversation: Conversation) -> None:
        # subtle: no RunLog.__init__, which would open a second connection and migrate
        self.path = shared.path
        self.db = shared.db
        self.observe = observe
        self.conversation = conversation
        self.top: str | None = None

    def start_run(self, run_id: str, society: str, society_json: dict[str, Any],
                  question: str, kind: str, models: dict[str, str],
                  parent_id: str | None = None) -> None:
        super().start_run(run_id, society, society_json, question, kind, models, parent_id)
        if self.top is None:
            self.top = run_id
            if not self.conversation.is_plain:
                self.event(run_id, None, "conversation", self.conversation.to_dict())

    def log_call(self, run_id: str, round_no: int, idx: int, agent: str, model: str,
                 purpose: str, backend: str, request: ChatRequest, reply: ChatReply,
                 replayed: bool = False) -> str:
        call_id = super().log_call(run_id, round_no, idx, agent, model, purpose, backend,
                                   request, reply, replayed)
        text = reply.text if reply.finish_reason != "error" else f"(error: {reply.error})"
        self.observe(Progress("reply", text, agent, purpose, run_id, run_id != self.top))
        return call_id


async def run_society(shared: Runner, society: Society, conversation: Conversation,
                      kind: str | None, observe: Observer) -> RunResult:
    """Run `society` on the conversation with the server's backends and log, telling
    `observe` of each round and reply. Cancelling it ends the run `interrupted`."""
    if shared.log is None:
        raise ValueError("minsky serve needs a run log")
    log = _ObservedLog(shared.log, observe, conversation)
    runner = Runner(_ConversationBackends(shared.backends, conversation), log)

    def round_started(message: str) -> None:
        observe(Progress("round", message, run_id=log.top or ""))

    return await runner.run(society, conversation.question, kind, progress=round_started)
