"""The engine actor: one per node, owning that node's backends, running whole cases.

A case (one society run on one question) runs here from start to finish, so the members
of one run share one engine and its prompt-prefix cache; different cases go to different
engines. The actor writes nothing: the run's events (everything the run log records) come
back with its result, and the driver replays them into its own run log.

Models are never shipped: the backends are built here, from this node's installed
packages (`Backends.get`, which for the embedded default model assembles and sha256-checks
the GGUF on this node), on the first case that needs them.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from typing import Any

from minsky.answers import AnswerKind
from minsky.backends.registry import Backends
from minsky.messages import ChatReply
from minsky.plugin_api import BackendSettings
from minsky.run_events import RunEvent
from minsky.runner import Runner, RunResult
from minsky.society import Society


class Engine:
    """The actor's class (wrapped by `ray.remote` in `pool.py`, so importing this module
    needs no Ray). Async: several cases run at once and their asks share the backends'
    batches, as they do under `--concurrency` on one machine."""

    def __init__(self, settings: BackendSettings) -> None:
        self.backends = Backends(settings)

    def where(self) -> dict[str, Any]:
        """Which process on which node this engine is (tests kill it by its pid)."""
        import ray

        return {"pid": os.getpid(), "host": socket.gethostname(),
                "node": ray.get_runtime_context().get_node_id()}

    async def run_case(self, society: Society, question: str, kind: AnswerKind,
                       resume: str | None = None,
                       replay: dict[str, deque[ChatReply]] | None = None,
                       ) -> tuple[RunResult | None, list[RunEvent], BaseException | None]:
        """Run one case (with `resume`, continue that run from the `replay` the driver read
        from its log); return its result (None when the run raised), the run's events in
        order, and the exception it raised, for the driver to log and re-raise as a local
        run would."""
        events: list[RunEvent] = []
        # a runner per case over the shared backends: each case collects its own events
        # (its run and its sub-society runs) while others run beside it
        runner = Runner(self.backends, observers=[events.append])
        try:
            # the runner's private path: this engine has no log, the driver read it
            result = await runner._run(society, question, kind, resume=resume, replay=replay)
        except Exception as exc:  # the driver re-raises it, as a local run would
            return None, events, exc
        return result, events, None
