"""The viewer's local HTTP server: GET only, loopback by default, no state to change.

The standard library's ThreadingHTTPServer is enough for one person's browser: each
request opens the log read-only, renders one page and closes it. Requests whose Host
header names another machine are refused while bound to loopback, so a web page
elsewhere cannot read the log through DNS rebinding.

A connection is one request (HTTP/1.0: nothing is kept alive) and one thread, so slow
clients are bounded as `minsky.serve.connections` says: the request head must arrive within
`head_s` in all (not per read), a reply waits at most `body_s` on a client that does not
read it, and past the connection cap a client gets a 503 and no thread.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from minsky.serve.connections import REFUSED, TIMED_OUT, ConnectionLimits, is_loopback
from minsky.view.pages import App

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog is 5: a burst of connections beyond it waits for the
    # client's SYN retries (seconds), which reads as an unreachable server
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: App,
                 limits: ConnectionLimits | None = None) -> None:
        self.app = app
        self.loopback = is_loopback(host)
        self.limits = limits or ConnectionLimits()
        self._open = threading.BoundedSemaphore(self.limits.cap)
        super().__init__((host, port), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._open.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(REFUSED)
            except OSError:
                pass  # it is being closed anyway
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._open.release()  # no thread started to release it
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
        # a client gone before its reply was written is not worth a traceback

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._open.release()


class DeadlineReader(io.RawIOBase):
    """A socket read against one deadline for all reads: a client that sends a byte a
    second runs out of time as surely as one that sends nothing."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + seconds
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError("request head not complete in time")
            self.sock.settimeout(left)
            return self.sock.recv_into(buffer)
        except TimeoutError:
            self.expired = True
            raise


class Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "minsky-view"
    sys_version = ""
    reader: DeadlineReader

    def setup(self) -> None:
        super().setup()
        self.reader = DeadlineReader(self.connection, self.server.limits.head_s)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        super().handle_one_request()  # it ends the connection on a TimeoutError, silently
        if self.reader.expired:
            try:
                self.connection.settimeout(1.0)
                self.connection.sendall(TIMED_OUT)
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(body=False)

    def _respond(self, body: bool) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if self.server.loopback and not is_loopback(host):
            status, page = 400, "only requests to localhost are served\n"
            ctype = "text/plain; charset=utf-8"
        else:
            url = urlsplit(self.path)
            try:
                status, page = self.server.app.page(url.path, dict(parse_qsl(url.query)))
                # a run's raw record is JSON; its error pages (a bad id, no log) are HTML
                json_page = status == 200 and url.path.endswith(".json")
                ctype = f"{'application/json' if json_page else 'text/html'}; charset=utf-8"
            except Exception as err:  # a page must fail alone, with a line, not a reset
                status, page = 500, f"error: {type(err).__name__}: {err}\n"
                ctype = "text/plain; charset=utf-8"
        data = page.encode("utf-8")
        # a client that stops reading the reply is cut off, not waited on for ever
        self.connection.settimeout(self.server.limits.body_s)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # a page view is not worth a line on the terminal
