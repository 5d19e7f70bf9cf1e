"""uvicorn's HTTP/1.1 protocol with read deadlines and a connection cap.

uvicorn closes a connection idle after a response (`timeout_keep_alive`) and answers 503
past `limit_concurrency`, but it waits forever for a request head or body that never
finishes, and it accepts and holds every connection it is offered. This subclass of its
h11 protocol adds what is missing (see `minsky.serve.connections`): a head deadline from the
connection (or from the first byte after a response), a body deadline from the end of
the head, and a refusal at once past the cap. Once a request is whole, the application
owns the time; nothing here limits how long a run or a stream takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from minsky.serve.connections import REFUSED, TIMED_OUT, ConnectionLimits


def protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """An h11 protocol class for uvicorn's `http=` that enforces `limits`."""
    cap = limits.cap

    class DeadlineProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._phase = ""  # "head" or "body": what the deadline waits for

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            if len(self.connections) > cap:  # this one is counted already
                self._close(REFUSED)
                return
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            self._disarm()
            super().on_response_complete()
            # idle now: uvicorn's keep-alive timer runs, unless a pipelined request began
            if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
                return
            self._watch()

        def _watch(self) -> None:
            """Arm the deadline for what the client is sending now, keeping the one armed
            when the phase is the same (a byte a second must not extend it)."""
            state = self.conn.their_state
            # between requests with nothing sent: keep-alive's business, not ours
            if (state is h11.IDLE and self.cycle is not None and not self.conn.trailing_data[0]
                    and self.timeout_keep_alive_task is not None):
                self._disarm()
                return
            phase = {h11.IDLE: "head", h11.SEND_BODY: "body"}.get(state, "")
            if phase == self._phase:
                return
            self._disarm()
            if phase:
                wait = limits.head_s if phase == "head" else limits.body_s
                self._phase = phase
                self._deadline = self.loop.call_later(wait, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, ""

        def _expire(self) -> None:
            self._deadline = None
            # subtle: a 408 only while nothing of a response is out; otherwise just close
            self._close(TIMED_OUT if self.conn.our_state is h11.IDLE else b"")

        def _close(self, reply: bytes) -> None:
            if self.transport.is_closing():
                return
            if reply:
                self.transport.write(reply)
            self.transport.close()

    return DeadlineProtocol
