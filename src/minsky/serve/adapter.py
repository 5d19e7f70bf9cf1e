"""The one place `minsky serve` touches the runner: run a society, observe it as it goes.

Everything the server knows about a run in progress comes through `run_society`, as
`Progress` records made from the run's typed events (`minsky.run_events`): a round
starting and each member's reply as it is in (the moment a reply is final: after its
tool calls, the replies of a backend batch together).

Each request gets a light Runner of its own over the server's shared backends and log:
the backends (what batches members across requests) are shared; what is per request is
the conversation added to every prompt (noted on the run, for the log) and the observer
of the run's events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minsky.answers import AnswerKind
from minsky.backends.base import Backend
from minsky.backends.registry import Backends
from minsky.run_events import CallDone, Note, RoundStarted, RunEvent, RunStarted, progress_observer
from minsky.runner import Runner, RunResult
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


class _Watch:
    """One request's observer of its run's events: each round and reply as `Progress`,
    and the conversation noted on the top run."""

    def __init__(self, observe: Observer, conversation: Conversation) -> None:
        self.observe = observe
        self.conversation = conversation
        self.top: str | None = None
        self.rounds = progress_observer(
            lambda text: observe(Progress("round", text, run_id=self.top or "")))
        self.runner: Runner | None = None  # set once the request's runner is made

    def __call__(self, e: RunEvent) -> None:
        if isinstance(e, RunStarted) and self.top is None:
            self.top = e.run_id
            if not self.conversation.is_plain and self.runner is not None:
                # subtle: emitted within RunStarted's own fan-out: the log (the first
                # observer) has the run already; a trace, later in line, has not, and
                # leaves the note out
                self.runner.emit(Note(e.run_id, None, "conversation",
                                      self.conversation.to_dict()))
        elif isinstance(e, RoundStarted):
            self.rounds(e)
        elif isinstance(e, CallDone):
            r = e.reply
            text = r.text if r.finish_reason != "error" else f"(error: {r.error})"
            self.observe(Progress("reply", text, e.agent, e.purpose, e.run_id,
                                  e.run_id != self.top))


async def run_society(shared: Runner, society: Society, conversation: Conversation,
                      kind: AnswerKind | None, observe: Observer) -> RunResult:
    """Run `society` on the conversation with the server's backends and log, telling
    `observe` of each round and reply. Cancelling it ends the run `interrupted`."""
    if shared.log is None:
        raise ValueError("minsky serve needs a run log")
    watch = _Watch(observe, conversation)
    runner = Runner(_ConversationBackends(shared.backends, conversation), shared.log,
                    observers=[watch])
    watch.runner = runner
    return await runner.run(society, conversation.question, kind)
