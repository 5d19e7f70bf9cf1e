"""How long a client may take, and how many may be connected: what both servers enforce.

A connection costs `minsky serve` and `minsky view` a socket (and the viewer a thread)
for as long as the client keeps it open. Without limits, a few hundred clients that send
a request head one byte at a time, or connect and say nothing, hold a server's open
files until it can accept no one else. So a request head must arrive whole within
`head_s` of its first byte (or of the connection), a body within `body_s` of its head,
an idle kept-alive connection is closed after `keep_alive_s`, and connections beyond
`max_connections` (fewer when the open-file limit is low) are refused with a 503 at once.
The servers apply these in `minsky.serve.deadlines` and `minsky.view.server`.

`is_loopback` says whether a host is this machine: both servers warn when bound to
anything else, the viewer refuses requests that name another host, and the test switch
for real models lets a server on loopback through.
"""

from __future__ import annotations

import ipaddress
import resource
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from pydantic import Field

from minsky.strict import Strict

# a request head (request line and headers) larger than this is refused (h11's default)
MAX_HEAD_BYTES = 16 * 1024


def _reply(status: str, text: str) -> bytes:
    """A whole HTTP response that closes the connection, written before any request."""
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


REFUSED = _reply("503 Service Unavailable", "too many connections\n")
TIMED_OUT = _reply("408 Request Timeout", "the request was not sent in time\n")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name, an address, an IPv6 address in brackets) is this machine:
    `localhost` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConnectionLimits(Strict):
    """Read deadlines, keep-alive and the connection cap of one server."""

    # the command-line options are built from these fields: defaults, ranges and help
    head_s: float = Field(10.0, ge=0.1, le=600,
                          description="seconds a client has to send a whole request head")
    body_s: float = Field(30.0, ge=0.1, le=3600,
                          description="seconds a client has to send a whole request body")
    keep_alive_s: int = Field(
        5, ge=1, le=600, description="seconds an idle connection is kept open between requests")
    max_connections: int = Field(
        256, ge=1, le=65_536, description="connections open at once (fewer if the open-file "
                                          "limit is low); more are refused with 503")

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


_FLAGS = {"head_s": "--head-timeout", "body_s": "--body-timeout",
          "keep_alive_s": "--keep-alive", "max_connections": "--max-connections"}


def _option(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The command-line option of one `ConnectionLimits` field, from the field itself."""
    field = ConnectionLimits.model_fields[name]
    low = next(m.ge for m in field.metadata if hasattr(m, "ge"))
    high = next(m.le for m in field.metadata if hasattr(m, "le"))
    kind = click.FloatRange if field.annotation in (float, "float") else click.IntRange
    return click.option(_FLAGS[name], name, type=kind(low, high), default=field.default,
                        show_default=True, help=field.description)


def connection_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Command options for the limits `names` (all when none are named), passed to the
    command as one `connections` argument; the others keep their defaults."""
    chosen = names or tuple(_FLAGS)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in chosen}
            return fn(*args, connections=ConnectionLimits(**given), **kwargs)

        command: Callable[..., Any] = wrapper
        for name in reversed(chosen):
            command = _option(name)(command)
        return command

    return decorate
