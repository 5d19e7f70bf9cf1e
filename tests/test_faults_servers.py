"""Servers that a slow client cannot starve: `minsky serve` and `minsky view` on 127.0.0.1.

Each test starts the real server (uvicorn with minsky's protocol, or the viewer's
threading server) on a free loopback port and attacks it with raw sockets: request heads
sent a byte at a time or not at all, bodies that stop, idle kept-alive connections, more
connections than the cap, and a low open-file limit. Limits are short here (about a
second) so the tests are quick; the defaults are the same mechanism with longer times.
"""

from __future__ import annotations

import http.client
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.messages import ChatReply, ChatRequest, Message, Usage
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.serve.connections import ConnectionLimits
from minsky.view import mindstorm as mindstorm_page
from minsky.view.pages import App
from minsky.view.server import ViewServer

pytest.importorskip("uvicorn")  # the serve extra; the viewer half needs nothing more

LIMITS = ConnectionLimits(head_s=1.0, body_s=1.0, keep_alive_s=1, max_connections=256)
MARGIN_S = 4.0  # a loaded 2-core machine may be slow to run the timers and threads
SLOW_CLIENTS = 50



@contextmanager
def serve(tmp_path: Path, make_society, limits: ConnectionLimits) -> Iterator[int]:
    from minsky.serve.app import ServeSettings, create_app
    from minsky.serve.server import BackgroundServer

    log = RunLog(tmp_path / "serve.db")
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(lambda r: "4")}), log)
    society = make_society(name="trio")
    app = create_app({"trio": society}, runner, ServeSettings())
    try:
        with BackgroundServer(app, limits=limits) as server:
            yield Port(server.port)
    finally:
        log.close()


@contextmanager
def view(tmp_path: Path, limits: ConnectionLimits) -> Iterator[int]:
    RunLog(tmp_path / "view.db").close()
    server = ViewServer("127.0.0.1", 0, App(tmp_path / "view.db", []), limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ViewPort(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["serve", "view"])
def start(request, tmp_path: Path, make_society):
    """Start one of the two servers with given limits: `with start(limits) as port`."""
    if request.param == "serve":
        return lambda limits: serve(tmp_path, make_society, limits)
    return lambda limits: view(tmp_path, limits)


class Port(int):
    """A bound port, and a page on it that answers 200."""

    path = "/health"


class ViewPort(Port):
    path = "/"


def get(port: int, path: str = "") -> int:
    path = path or getattr(port, "path", "/")
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def connect(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    if first:
        sock.sendall(first)
    return sock


def wait_closed(socks: list[socket.socket], within: float, drip: bytes = b"") -> float:
    """Seconds until the server closed every socket (reading what it sent), writing
    `drip` to each open one every 0.1 s; fails past `within` with the count still open."""
    start = time.monotonic()
    open_ = list(socks)
    last_drip = 0.0
    while open_:
        now = time.monotonic()
        if now - start > within:
            raise AssertionError(f"{len(open_)} of {len(socks)} connections still open after "
                                 f"{within:.0f} s")
        if drip and now - last_drip >= 0.1:
            last_drip = now
            for sock in list(open_):
                try:
                    sock.send(drip)
                except OSError:
                    open_.remove(sock)  # reset by the server: closed
        readable, _, _ = select.select(open_, [], [], 0.1)
        for sock in readable:
            try:
                if not sock.recv(65536):
                    open_.remove(sock)
            except OSError:
                open_.remove(sock)
    return time.monotonic() - start


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


HEAD_START = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def test_request_heads_sent_a_byte_at_a_time_are_cut_off(start) -> None:
    with start(LIMITS) as port:
        socks = [connect(port, HEAD_START) for _ in range(SLOW_CLIENTS)]
        try:
            assert get(port) == 200  # the slow ones do not starve anyone meanwhile
            took = wait_closed(socks, LIMITS.head_s + MARGIN_S, drip=b"x")
            # cut off by the deadline, not at once: a server that closed every connection
            # on sight would pass the bound above (wait_closed fails past it)
            assert took >= LIMITS.head_s / 2
            assert get(port) == 200
        finally:
            close_all(socks)


def test_connections_that_never_send_are_closed(start) -> None:
    with start(LIMITS) as port:
        socks = [connect(port) for _ in range(SLOW_CLIENTS)]
        try:
            assert get(port) == 200
            wait_closed(socks, LIMITS.head_s + MARGIN_S)
        finally:
            close_all(socks)


def test_a_slow_client_is_told_408(start) -> None:
    with start(LIMITS) as port:
        sock = connect(port, HEAD_START)
        try:
            sock.settimeout(LIMITS.head_s + MARGIN_S)
            assert sock.recv(100).startswith(b"HTTP/1.1 408")
        finally:
            sock.close()


def test_connections_past_the_cap_are_refused_at_once(start) -> None:
    capped = LIMITS.model_copy(update={"max_connections": 5})
    with start(capped) as port:
        held = [connect(port) for _ in range(5)]
        time.sleep(0.3)  # let the server take them in
        extra = connect(port)
        try:
            extra.settimeout(2)
            assert extra.recv(100).startswith(b"HTTP/1.1 503")
            wait_closed([extra], 2)
            wait_closed(held, capped.head_s + MARGIN_S)  # and the held ones time out
            assert get(port) == 200
        finally:
            close_all([*held, extra])


def test_an_idle_connection_after_a_response_is_closed(start) -> None:
    with start(LIMITS) as port:
        sock = connect(port, f"GET {port.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        try:
            sock.settimeout(5)
            assert sock.recv(100).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
            # under uvicorn's own default (5 s): the limit given is the one applied
            wait_closed([sock], LIMITS.keep_alive_s + 2.5)
        finally:
            sock.close()


def test_a_kept_alive_connection_that_starts_a_head_and_stalls_is_cut_off(
        tmp_path: Path, make_society) -> None:
    with serve(tmp_path, make_society, LIMITS) as port:
        sock = connect(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            sock.settimeout(5)
            assert sock.recv(1000).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # uvicorn stops its keep-alive timer
            wait_closed([sock], LIMITS.head_s + MARGIN_S, drip=b"x")
        finally:
            sock.close()


def test_a_client_that_stops_sending_its_body_is_cut_off(tmp_path: Path, make_society) -> None:
    with serve(tmp_path, make_society, LIMITS) as port:
        socks = [connect(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                               b"\r\n{\"model\": \"trio\"")
                 for _ in range(10)]
        try:
            assert get(port) == 200
            wait_closed(socks, LIMITS.body_s + MARGIN_S)
        finally:
            close_all(socks)


def test_a_body_sent_in_time_is_answered(tmp_path: Path, make_society) -> None:
    body = b'{"model": "trio", "messages": [{"role": "user", "content": "2+2?"}]}'
    with serve(tmp_path, make_society, LIMITS) as port:
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=20)
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 200 and b'"content"' in reply.read()
        conn.close()


def test_the_options_are_bounded_and_reach_the_command() -> None:
    from click.testing import CliRunner

    from minsky.cli import main

    for args in (["serve", "--head-timeout", "0"], ["serve", "--max-connections", "0"],
                 ["serve", "--keep-alive", "100000"], ["view", "--head-timeout", "99999"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and args[1] in result.output, args
    assert "--body-timeout" in CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--max-connections" in CliRunner().invoke(main, ["view", "--help"]).output


def test_the_cap_fits_under_a_low_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert ConnectionLimits(max_connections=10).cap <= 10
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
        assert ConnectionLimits(max_connections=256).cap == 96
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _low_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_view_stays_reachable_under_a_low_open_file_limit(tmp_path: Path) -> None:
    RunLog(tmp_path / "view.db").close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "minsky", "view", "--log", str(tmp_path / "view.db"),
         "--port", "0", "--head-timeout", "1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=_low_files)
    socks: list[socket.socket] = []
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "http://" in line, line
        port = int(line.split("http://")[1].split("/")[0].rsplit(":", 1)[1])
        # more idle sockets than the server has files: it must shed them, not stop
        for _ in range(150):
            try:
                socks.append(connect(port))
            except OSError:
                break
        deadline = time.monotonic() + 1 + 2 * MARGIN_S
        status = 0
        while time.monotonic() < deadline:
            try:
                status = get(port, "/")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200
    finally:
        close_all(socks)
        proc.terminate()
        proc.wait(timeout=10)


def test_a_run_page_over_a_huge_tree_reads_a_bounded_number_of_calls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call cap is per page: 40 sub-runs of 40 calls each would be 1,640 calls."""
    monkeypatch.setattr(mindstorm_page, "MAX_CALLS", 100)
    log = RunLog(tmp_path / "tree.db")
    ids = iter(f"01M8QE7SEA3J6NCJVDT46H{n:04d}" for n in range(2000))
    request = ChatRequest(messages=[Message("user", "2+2?")])
    reply = ChatReply("4", Usage(1, 1))

    def run(parent: str | None, children: int, calls: int) -> str:
        run_id = next(ids)
        log.start_run(run_id, "tree", {}, "2+2?", "number", {}, parent_id=parent)
        for i in range(calls):
            backend, child = "fake:a", None
            if children:
                child = run(run_id, 0, calls)
                backend = f"society:leaf run {child}"
            log.log_call(run_id, 1, i, f"m{i}", "fake:a", "answer", backend, request, reply,
                         child=child)
        log.finish_run(run_id, "ok", "4", {}, Usage(1, 1), 0.1)
        return run_id

    top = run(None, 40, 40)
    log.close()
    status, html = App(tmp_path / "tree.db", []).page(f"/run/{top}", {})
    assert status == 200
    assert html.count('<div class="call">') <= 100
    assert "more backend call(s) not shown" in html
    assert html.count('<details class="sub">') < 40  # the rest are links, not folded in
