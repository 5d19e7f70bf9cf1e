"""A hostile OpenAI-compatible server for the fault-injection tests, on 127.0.0.1.

A real HTTP server (raw sockets, one thread per connection) whose behaviour is chosen by
the `model` of each request, so one server serves every fault and the CLI can reach it
through `MINSKY_OPENAI_BASE_URL` with `--model openai:<behaviour>`:

    ok            a proper reply ("ok") with honest usage
    500           HTTP 500, always
    429           HTTP 429 with `Retry-After: 100000`
    truncated     200 with half a JSON object
    content-list  `content` is a list;  content-number: a number
    surrogate     `content` holds a lone surrogate ("\\ud800", valid JSON)
    negative      usage of -1,000,000 prompt and completion tokens
    nested        a body of 200,000 nested `[`
    huge          `Content-Length` of 200 MB, then as many bytes as the client reads
    endless       a chunked body that never ends
    loris         headers, then one byte every 0.2 s for ever
    silent        reads the request and never answers

Every connection thread stops when the client hangs up or the server shuts down.
"""

from __future__ import annotations

import json
import socket
import threading
import time

CHUNK = b"A" * 65536


def _reply(content: object, usage: dict[str, object] | None = None) -> bytes:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 5, "completion_tokens": 1}}
    return json.dumps(body).encode()


class HostileServer:
    """A loopback server; `url` is its base URL, `hits` counts requests per behaviour."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.stopping = threading.Event()
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with conn:
                while not self.stopping.is_set():  # keep-alive: several requests per socket
                    model = self._read_request(conn)
                    if model is None:
                        return
                    with self.lock:
                        self.hits[model] = self.hits.get(model, 0) + 1
                    if not self._answer(conn, model):
                        return
        except OSError:
            return  # the client hung up: what a bounded client does

    def _read_request(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return None
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                return None
            body += part
        return str(json.loads(body).get("model", "ok"))

    def _send(self, conn: socket.socket, status: str, body: bytes,
              extra: str = "") -> bool:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        return True

    def _answer(self, conn: socket.socket, model: str) -> bool:
        if model == "ok":
            return self._send(conn, "200 OK", _reply("ok"))
        if model == "500":
            return self._send(conn, "500 Internal Server Error", b'{"error": "boom"}')
        if model == "429":
            return self._send(conn, "429 Too Many Requests", b'{"error": "slow down"}',
                              "Retry-After: 100000\r\n")
        if model == "truncated":
            return self._send(conn, "200 OK", _reply("ok")[:20])
        if model == "content-list":
            return self._send(conn, "200 OK", _reply(["a", "b"]))
        if model == "content-number":
            return self._send(conn, "200 OK", _reply(12345))
        if model == "surrogate":
            return self._send(conn, "200 OK", _reply("x").replace(b'"x"', b'"x \\ud800 y"'))
        if model == "negative":
            return self._send(conn, "200 OK", _reply("ok", {"prompt_tokens": -1_000_000,
                                                            "completion_tokens": -1_000_000}))
        if model == "nested":
            return self._send(conn, "200 OK", b"[" * 200_000)
        if model == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 200000000\r\n\r\n")
            self._stream(conn, lambda: CHUNK)
            return False
        if model == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            self._stream(conn, lambda: b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            return False
        if model == "loris":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            self._stream(conn, lambda: b" ", pause_s=0.2)
            return False
        if model == "silent":
            self.stopping.wait(600)
            return False
        return self._send(conn, "400 Bad Request", b'{"error": "unknown behaviour"}')

    def _stream(self, conn: socket.socket, chunk: object, pause_s: float = 0.0) -> None:
        # until the client hangs up (the point of these tests) or the server stops
        deadline = time.monotonic() + 600
        while not self.stopping.is_set() and time.monotonic() < deadline:
            conn.sendall(chunk())  # type: ignore[operator]
            if pause_s:
                time.sleep(pause_s)
