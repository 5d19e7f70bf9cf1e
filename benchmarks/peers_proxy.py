"""A metering pass-through between optillm and the model server (issue 27).

optillm's own `usage` counts only completion tokens, and llama-cpp-python's server
ignores `n` (it always answers one choice). This proxy sits between them:

- every upstream call is logged, one JSON line each: when it started, how long it took,
  its prompt and completion tokens from the server's own usage, its finish reason, and
  the label of the setup being measured, so tokens and calls per question are the
  server's, attributed to each question by time (questions are asked one at a time);
- the server samples as minsky's backend does (`SAMPLER`: no repeat penalty, no min-p),
  where a request does not say otherwise;
- a request for `n > 1` choices is sent as `n` requests of one choice and the replies are
  merged, as a server that honours `n` (vLLM, OpenAI) would answer; `moa` and `bon` ask
  for 3 drafts in one call and would otherwise get one.

Bound to 127.0.0.1; request bodies are capped; each upstream call has a deadline.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

MAX_BODY = 4 * 1024 * 1024
UPSTREAM_TIMEOUT_S = 900.0
MAX_N = 16
SAMPLER = {"repeat_penalty": 1.0, "min_p": 0.0, "top_k": 40}


class Meter:
    """The upstream server, the log of calls made to it, and the current label."""

    def __init__(self, upstream: str, log: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.log = log
        self.label = ""
        self.client = httpx.Client(timeout=UPSTREAM_TIMEOUT_S)
        self.lock = threading.Lock()

    def call(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        start = time.time()
        reply = self.client.post(f"{self.upstream}/chat/completions", json=body)
        try:
            data = reply.json()
        except ValueError:
            data = {"error": {"message": reply.text[:500]}}
        usage = data.get("usage") or {}
        choice = (data.get("choices") or [{}])[0]
        entry = {"t": round(start, 3), "s": round(time.time() - start, 3),
                 "label": self.label, "status": reply.status_code,
                 "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                 "completion_tokens": int(usage.get("completion_tokens") or 0),
                 "finish_reason": choice.get("finish_reason"),
                 "max_tokens": body.get("max_tokens"), "temperature": body.get("temperature")}
        with self.lock, self.log.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        return reply.status_code, data

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        # sample as minsky's own backend does: llama-cpp-python's server defaults to
        # repeat_penalty 1.1 and min_p 0.05 (minsky, and llama.cpp's llama-server for
        # repeat_penalty, use 1.0 and 0); a request that sets them keeps its own
        body = {**SAMPLER, **body}
        n = int(body.get("n") or 1)
        if n <= 1:
            return self.call(body)
        n = min(n, MAX_N)
        merged: dict[str, Any] | None = None
        for i in range(n):
            status, data = self.call({**body, "n": 1})
            if status != 200:
                return status, data
            if merged is None:
                merged = dict(data)
                merged["choices"] = []
                merged["usage"] = {"prompt_tokens": 0, "completion_tokens": 0,
                                   "total_tokens": 0}
            for choice in data.get("choices") or []:
                merged["choices"].append({**choice, "index": i})
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                merged["usage"][key] += int((data.get("usage") or {}).get(key) or 0)
        assert merged is not None
        return 200, merged


def serve(meter: Meter, port: int) -> ThreadingHTTPServer:
    """Start the proxy on 127.0.0.1:`port` in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # /v1/models, for clients that list models first
            try:
                reply = meter.client.get(f"{meter.upstream}{self.path[len('/v1'):]}")
                self._send(reply.status_code, reply.json())
            except (httpx.HTTPError, ValueError) as err:
                self._send(502, {"error": {"message": f"upstream: {err}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not self.path.endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            if length > MAX_BODY:
                self._send(413, {"error": {"message": f"body over {MAX_BODY} bytes"}})
                return
            try:
                body = json.loads(self.rfile.read(length))
                status, data = meter.complete(body)
            except (httpx.HTTPError, ValueError) as err:
                status, data = 502, {"error": {"message": f"upstream: {err}"}}
            self._send(status, data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
