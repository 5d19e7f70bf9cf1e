"""Running the application under uvicorn: in the foreground (the command) or in a
background thread on a free loopback port (tests, the load benchmark)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from minsky.serve.connections import MAX_HEAD_BYTES, ConnectionLimits
from minsky.serve.deadlines import protocol

START_TIMEOUT_S = 30.0


def config(app: FastAPI, host: str, port: int,
           limits: ConnectionLimits | None = None) -> uvicorn.Config:
    """uvicorn's settings for `app`: bounded shutdown, read deadlines, a connection cap."""
    limits = limits or ConnectionLimits()
    # graceful shutdown is bounded: streams in flight get a few seconds, then are cut
    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=5, lifespan="on",
                          http=protocol(limits), timeout_keep_alive=limits.keep_alive_s,
                          # +1: uvicorn counts the asking connection among those open
                          limit_concurrency=limits.cap + 1,
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (0: a free port, chosen now), for uvicorn to serve
    on; binding before serving is how the command knows, and says, the port it serves."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()  # connectable from now on: a client told the port may connect at once
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class BackgroundServer:
    """uvicorn serving `app` in a daemon thread; `port` is the one it bound."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                 limits: ConnectionLimits | None = None) -> None:
        self.server = uvicorn.Server(config(app, host, port, limits))
        self.host = host
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="minsky-serve")

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("minsky serve did not start")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=START_TIMEOUT_S)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
