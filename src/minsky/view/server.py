"""The viewer's local HTTP server: GET only, loopback by default, no state to change.

The standard library's ThreadingHTTPServer is enough for one person's browser: each
request opens the log read-only, renders one page and closes it. Requests whose Host
header names another machine are refused while bound to loopback, so a web page
elsewhere cannot read the log through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from minsky.view.pages import App

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, app: App) -> None:
        self.app = app
        self.loopback = is_loopback(host)
        super().__init__((host, port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "minsky-view"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(body=False)

    def _respond(self, body: bool) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if self.server.loopback and host not in LOOPBACK_NAMES:
            status, page = 400, "only requests to localhost are served\n"
            ctype = "text/plain; charset=utf-8"
        else:
            url = urlsplit(self.path)
            ctype = "text/html; charset=utf-8"
            try:
                status, page = self.server.app.page(url.path, dict(parse_qsl(url.query)))
            except Exception as err:  # a page must fail alone, with a line, not a reset
                status, page = 500, f"error: {type(err).__name__}: {err}\n"
                ctype = "text/plain; charset=utf-8"
        data = page.encode("utf-8")
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
