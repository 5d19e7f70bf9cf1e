"""benchmarks/peers_proxy.py: the metering pass-through between optillm and a model server.

A tiny upstream chat-completions server runs in a background thread (standard library
only); the proxy under test runs in front of it, and the test talks to the proxy.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
peers_proxy: Any = importlib.import_module("peers_proxy")
SAMPLER: dict[str, Any] = peers_proxy.SAMPLER

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
LOG_KEYS = {"t", "s", "label", "status", "prompt_tokens", "completion_tokens",
            "finish_reason", "max_tokens", "temperature"}


class Upstream:
    """The model server: call k (from 0) answers "draft k" with k + 1 completion tokens,
    unless `raw` is set, when it answers that text (not JSON) with status `raw_status`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: str | None = None
        self.raw_status = 503
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            k = len(self.bodies)
            self.bodies.append(body)
        return {
            "id": f"chatcmpl-{k}", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "length" if k == 1 else "stop",
                         "message": {"role": "assistant", "content": f"draft {k}"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": k + 1,
                      "total_tokens": 10 + k + 1},
        }


def _handler(state: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if state.raw is not None:
                with state.lock:
                    state.bodies.append(body)
                self._send(state.raw_status, state.raw.encode(), "text/plain")
                return
            self._send(200, json.dumps(state.answer(body)).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture(autouse=True)
def no_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class Proxy:
    def __init__(self, meter: Any, url: str, log: Path) -> None:
        self.meter, self.url, self.log = meter, url, log
        self.client = httpx.Client(timeout=10.0, trust_env=False)

    def post(self, body: dict[str, Any], path: str = "/v1/chat/completions") -> httpx.Response:
        return self.client.post(f"{self.url}{path}", json=body)

    def lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def running_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, int]]:
    """One proxy for the module: its server's shutdown polls every 0.5 s, too slow to pay
    per test. Each test points its meter at the test's own upstream and log."""
    log = tmp_path_factory.mktemp("proxy") / "unused.jsonl"
    meter = peers_proxy.Meter("http://127.0.0.1:9/v1", log)
    server = peers_proxy.serve(meter, 0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    try:
        yield meter, port
    finally:
        server.shutdown()
        server.server_close()
        meter.client.close()


@pytest.fixture
def proxy(running_proxy: tuple[Any, int], upstream: Upstream, tmp_path: Path) -> Iterator[Proxy]:
    meter, port = running_proxy
    meter.upstream, meter.log, meter.label = upstream.url, tmp_path / "calls.jsonl", ""
    client = Proxy(meter, f"http://127.0.0.1:{port}", meter.log)
    try:
        yield client
    finally:
        client.client.close()


def request(**extra: Any) -> dict[str, Any]:
    return {"model": "qwen", "messages": [{"role": "user", "content": "What is 2+2?"}],
            "temperature": 0.7, "max_tokens": 64, **extra}


def test_n_choices_become_n_upstream_calls_each_logged(upstream: Upstream,
                                                       proxy: Proxy) -> None:
    proxy.meter.label = "moa"
    reply = proxy.post(request(n=3))
    assert reply.status_code == 200
    # three calls of one choice each, the rest of the request unchanged
    assert upstream.bodies == [{**SAMPLER, **request(n=1)}] * 3
    lines = proxy.lines()
    assert len(lines) == 3
    for k, line in enumerate(lines):
        assert set(line) == LOG_KEYS
        assert line["label"] == "moa" and line["status"] == 200
        assert (line["prompt_tokens"], line["completion_tokens"]) == (10, k + 1)
        assert (line["max_tokens"], line["temperature"]) == (64, 0.7)
        assert isinstance(line["t"], float) and line["s"] >= 0
    assert [line["finish_reason"] for line in lines] == ["stop", "length", "stop"]
    assert lines[0]["t"] <= lines[1]["t"] <= lines[2]["t"]  # sequential, in order


def test_n_choices_are_merged_indexed_with_usage_summed(upstream: Upstream,
                                                        proxy: Proxy) -> None:
    data = proxy.post(request(n=3)).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in data["choices"]] == ["draft 0", "draft 1",
                                                                  "draft 2"]
    assert [c["finish_reason"] for c in data["choices"]] == ["stop", "length", "stop"]
    assert data["usage"] == {"prompt_tokens": 30, "completion_tokens": 1 + 2 + 3,
                             "total_tokens": 36}


@pytest.mark.parametrize("extra", [{}, {"n": 1}])
def test_one_choice_passes_through_with_minskys_sampler(upstream: Upstream, proxy: Proxy,
                                             extra: dict[str, Any]) -> None:
    proxy.meter.label = "baseline"
    sent = request(**extra)
    reply = proxy.post(sent)
    assert reply.status_code == 200
    # minsky's sampler where the request says nothing (llama-cpp-python's server would
    # otherwise apply repeat_penalty 1.1 and min_p 0.05)
    assert upstream.bodies == [{**SAMPLER, **sent}]
    assert reply.json() == {
        "id": "chatcmpl-0", "object": "chat.completion", "model": "qwen",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "draft 0"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }
    [line] = proxy.lines()
    assert line["label"] == "baseline"
    assert (line["status"], line["prompt_tokens"], line["completion_tokens"]) == (200, 10, 1)
    assert line["finish_reason"] == "stop"


def test_each_call_is_logged_with_the_label_current_then(upstream: Upstream,
                                                         proxy: Proxy) -> None:
    for label in ("cot", "bon"):
        proxy.meter.label = label
        assert proxy.post(request()).status_code == 200
    assert [line["label"] for line in proxy.lines()] == ["cot", "bon"]


def test_a_non_json_upstream_reply_keeps_its_status_and_is_logged(upstream: Upstream,
                                                                  proxy: Proxy) -> None:
    upstream.raw = "upstream busy, try later"
    proxy.meter.label = "re2"
    reply = proxy.post(request())
    assert reply.status_code == 503
    assert reply.json() == {"error": {"message": "upstream busy, try later"}}
    [line] = proxy.lines()
    assert (line["label"], line["status"]) == ("re2", 503)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (0, 0)
    assert line["finish_reason"] is None


def test_a_failed_call_stops_an_n_request(upstream: Upstream, proxy: Proxy) -> None:
    upstream.raw, upstream.raw_status = "<html>bad gateway</html>", 502
    reply = proxy.post(request(n=3))
    assert reply.status_code == 502
    assert "bad gateway" in reply.json()["error"]["message"]
    assert len(upstream.bodies) == 1  # no point asking again for the other two
    assert [line["status"] for line in proxy.lines()] == [502]


def test_other_posts_are_not_found(upstream: Upstream, proxy: Proxy) -> None:
    reply = proxy.post({"model": "qwen", "prompt": "hi"}, path="/v1/completions")
    assert reply.status_code == 404
    assert "/v1/completions" in reply.json()["error"]["message"]
    assert upstream.bodies == []
    assert proxy.lines() == []


def test_a_request_keeps_its_own_sampler_settings(upstream: Upstream, proxy: Proxy) -> None:
    sent = request(repeat_penalty=1.3, min_p=0.1)
    assert proxy.post(sent).status_code == 200
    assert upstream.bodies[-1]["repeat_penalty"] == 1.3
    assert upstream.bodies[-1]["min_p"] == 0.1
    assert upstream.bodies[-1]["top_k"] == SAMPLER["top_k"]
