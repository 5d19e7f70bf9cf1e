"""How long a client may take, and how many may be connected: what both servers enforce.

A connection costs `minsky serve` and `minsky view` a socket (and the viewer a thread)
for as long as the client keeps it open. Without limits, a few hundred clients that send
a request head one byte at a time, or connect and say nothing, hold a server's open
files until it can accept no one else. So a request head must arrive whole within
`head_s` of its first byte (or of the connection), a body within `body_s` of its head,
an idle kept-alive connection is closed after `keep_alive_s`, and connections beyond
`max_connections` (fewer when the open-file limit is low) are refused with a 503 at once.
The servers apply these in `minsky.serve.deadlines` and `minsky.view.server`.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field

# a request head (request line and headers) larger than this is refused (h11's default)
MAX_HEAD_BYTES = 16 * 1024


def _reply(status: str, text: str) -> bytes:
    """A whole HTTP response that closes the connection, written before any request."""
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


REFUSED = _reply("503 Service Unavailable", "too many connections\n")
TIMED_OUT = _reply("408 Request Timeout", "the request was not sent in time\n")


class ConnectionLimits(BaseModel):
    """Read deadlines, keep-alive and the connection cap of one server."""

    model_config = ConfigDict(extra="forbid")

    head_s: float = Field(10.0, gt=0, le=600, description="to send a whole request head")
    body_s: float = Field(30.0, gt=0, le=3600, description="to send a whole request body")
    keep_alive_s: int = Field(5, ge=1, le=600, description="idle time between requests")
    max_connections: int = Field(256, ge=1, le=65_536, description="open at once")

    @property
    def cap(self) -> int:
        """`max_connections`, or fewer when the open-file limit could not hold that many
        sockets beside the files the server itself needs."""
        return connection_cap(self.max_connections)


def connection_cap(requested: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    # a quarter (at least 32) stays for the log, the models, the listening socket, imports
    spare = soft - max(32, soft // 4)
    return max(1, min(requested, spare))


_OPTIONS = {
    "head_s": click.option(
        "--head-timeout", "head_s", type=click.FloatRange(0.1, 600), default=10.0,
        show_default=True, help="seconds a client has to send a whole request head"),
    "body_s": click.option(
        "--body-timeout", "body_s", type=click.FloatRange(0.1, 3600), default=30.0,
        show_default=True, help="seconds a client has to send a whole request body"),
    "keep_alive_s": click.option(
        "--keep-alive", "keep_alive_s", type=click.IntRange(1, 600), default=5,
        show_default=True, help="seconds an idle connection is kept open between requests"),
    "max_connections": click.option(
        "--max-connections", type=click.IntRange(1, 65_536), default=256, show_default=True,
        help="connections open at once (fewer if the open-file limit is low); more are "
             "refused with 503"),
}


def connection_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Command options for the limits `names` (all when none are named), passed to the
    command as one `connections` argument; the others keep their defaults."""
    chosen = names or tuple(_OPTIONS)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in chosen}
            return fn(*args, connections=ConnectionLimits(**given), **kwargs)

        for name in reversed(chosen):
            wrapper = _OPTIONS[name](wrapper)
        return wrapper

    return decorate
