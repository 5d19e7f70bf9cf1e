"""Tests of OpenAIBackend against a real HTTP server, not a mocked transport.

A small OpenAI-compatible server runs in a background thread (standard library only). It
records every body and header it receives, answers from a per-test script of canned
responses, and otherwise echoes the last user message back with word-count usage. Backoff
sleeps are replaced by a recorder, so retry tests are fast and can assert the waits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from minsky.backends.base import Capabilities
from minsky.backends.openai import OpenAIBackend, _retry_after
from minsky.messages import ChatRequest, Message, Options

ENV_VARS = ("MINSKY_OPENAI_BASE_URL", "OPENAI_BASE_URL", "MINSKY_OPENAI_API_KEY", "OPENAI_API_KEY")


@dataclass
class Canned:
    """One scripted response; `body` is JSON-encoded unless it is already a string."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeOpenAIServer:
    """State shared between the test and the server's handler threads."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Canned] = []  # consumed in arrival order; then the echo answers
        self.echo_delay: Callable[[dict[str, Any]], float] = lambda body: 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.url = ""

    def respond(self, body: dict[str, Any]) -> Canned:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        user = [m["content"] for m in body["messages"] if m["role"] == "user"]
        content = user[-1] if user else ""
        prompt_words = sum(len(m["content"].split()) for m in body["messages"])
        return Canned(
            body={
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": len(content.split()),
                    "total_tokens": prompt_words + len(content.split()),
                },
            },
            delay_s=self.echo_delay(body),
        )


def _make_handler(state: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/chat/completions":
                self._send(Canned(status=404, body={"error": "no route " + self.path}))
                return
            body = json.loads(raw)
            with state.lock:
                state.bodies.append(body)
                state.headers.append({k.lower(): v for k, v in self.headers.items()})
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                canned = state.respond(body)
                time.sleep(canned.delay_s)
            finally:
                with state.lock:
                    state.in_flight -= 1
            self._send(canned)

        def _send(self, canned: Canned) -> None:
            payload = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
            data = payload.encode()
            try:
                self.send_response(canned.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in canned.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to answer

    return Handler


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    state = FakeOpenAIServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True  # handlers still sleeping must not block shutdown
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hermetic: a developer's real OpenAI key or base URL must never leak into a test.
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class SleepRecorder:
    """Stands in for asyncio.sleep: records the requested waits, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest_asyncio.fixture
async def make_backend(
    server: FakeOpenAIServer,
) -> AsyncIterator[Callable[..., OpenAIBackend]]:
    created: list[OpenAIBackend] = []

    def factory(**kwargs: Any) -> OpenAIBackend:
        kwargs.setdefault("base_url", server.url)
        backend = OpenAIBackend("test-model", **kwargs)
        backend._sleep = SleepRecorder()
        created.append(backend)
        return backend

    yield factory
    for backend in created:
        await backend.aclose()


def ask(text: str, **options: Any) -> ChatRequest:
    return ChatRequest(
        messages=[Message("system", "be brief"), Message("user", text)],
        options=Options(**options),
    )


def ok_body(content: str = "ok", **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    choice["finish_reason"] = extra.pop("finish_reason", "stop")
    return {"choices": [choice], **extra}


# --- request body and headers -----------------------------------------------------------


@pytest.mark.asyncio
async def test_echo_usage_and_minimal_body(server: FakeOpenAIServer, make_backend) -> None:
    backend = make_backend()
    [reply] = await backend.complete([ask("hello there world")])
    assert reply.text == "hello there world"
    assert reply.finish_reason == "stop" and reply.error is None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (5, 3)
    assert reply.usage.cached_tokens == 0
    assert reply.latency_s > 0
    [body] = server.bodies
    assert body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there world"},
        ],
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 256,
    }  # no seed, stop, response_format or grammar when unset


@pytest.mark.asyncio
async def test_options_seed_stop_and_json_schema(server: FakeOpenAIServer, make_backend) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = ask("q", temperature=0.7, top_p=0.9, max_tokens=12, seed=42, stop=["\n", "END"])
    request.json_schema = schema
    await make_backend().complete([request])
    [body] = server.bodies
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, 12)
    assert body["seed"] == 42
    assert body["stop"] == ["\n", "END"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("grammar_field", [False, True])
async def test_grammar_sent_only_when_enabled(
    server: FakeOpenAIServer, make_backend, grammar_field: bool
) -> None:
    backend = make_backend(grammar_field=grammar_field)
    assert backend.capabilities == Capabilities(grammar=grammar_field, json_schema=True)
    request = ask("q")
    request.grammar = 'root ::= "yes" | "no"'
    await backend.complete([request])
    [body] = server.bodies
    assert ("grammar" in body) is grammar_field
    if grammar_field:
        assert body["grammar"] == request.grammar


@pytest.mark.asyncio
async def test_env_vars_give_base_url_and_key(
    server: FakeOpenAIServer, make_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/unused")
    monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", server.url + "/")  # wins; slash trimmed
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    monkeypatch.setenv("MINSKY_OPENAI_API_KEY", "sk-minsky")
    backend = make_backend(base_url=None)
    assert backend.describe() == f"openai:test-model@{server.url}"
    [reply] = await backend.complete([ask("hi")])
    assert reply.error is None
    assert server.headers[0]["authorization"] == "Bearer sk-minsky"


@pytest.mark.asyncio
async def test_openai_api_key_fallback(
    server: FakeOpenAIServer, make_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    await make_backend().complete([ask("hi")])
    assert server.headers[0]["authorization"] == "Bearer sk-fallback"


@pytest.mark.asyncio
async def test_no_key_no_authorization_header(server: FakeOpenAIServer, make_backend) -> None:
    backend = make_backend()
    assert backend.api_key is None
    await backend.complete([ask("hi")])
    assert "authorization" not in server.headers[0]


def test_default_base_url() -> None:
    backend = OpenAIBackend("gpt-x")
    assert backend.base_url == "https://api.openai.com/v1"
    assert backend.describe() == "openai:gpt-x@https://api.openai.com/v1"


# --- response parsing -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_length_finish_and_cached_tokens(server: FakeOpenAIServer, make_backend) -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 6},
    }
    server.script = [Canned(body=ok_body("truncated", finish_reason="length", usage=usage))]
    [reply] = await make_backend().complete([ask("q")])
    assert reply.text == "truncated" and reply.finish_reason == "length"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (9, 4)
    assert reply.usage.cached_tokens == 6


@pytest.mark.asyncio
async def test_missing_usage_and_odd_finish_reason(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(body=ok_body("x", finish_reason="tool_calls"))]
    [reply] = await make_backend().complete([ask("q")])
    assert reply.finish_reason == "stop"
    assert reply.usage.total_tokens == 0 and reply.usage.cached_tokens == 0


@pytest.mark.asyncio
async def test_malformed_json_is_an_error_without_retry(
    server: FakeOpenAIServer, make_backend
) -> None:
    server.script = [Canned(body="<html>not json</html>")]
    backend = make_backend()
    [reply] = await backend.complete([ask("q")])
    assert reply.finish_reason == "error" and reply.text == ""
    assert "malformed" in reply.error and "not json" in reply.error
    assert len(server.bodies) == 1 and backend._sleep.delays == []


# --- batching and concurrency -----------------------------------------------------------


@pytest.mark.asyncio
async def test_replies_keep_request_order(server: FakeOpenAIServer, make_backend) -> None:
    # Later requests answer sooner, so completion order is the reverse of request order.
    server.echo_delay = lambda body: 0.02 * (5 - int(body["messages"][-1]["content"]))
    replies = await make_backend().complete([ask(str(i)) for i in range(5)])
    assert [r.text for r in replies] == [str(i) for i in range(5)]


@pytest.mark.asyncio
async def test_concurrency_limit_is_honoured(server: FakeOpenAIServer, make_backend) -> None:
    server.echo_delay = lambda body: 0.05
    replies = await make_backend(concurrency=3).complete([ask(f"m{i}") for i in range(10)])
    assert all(r.error is None for r in replies)
    assert 1 < server.max_in_flight <= 3


@pytest.mark.asyncio
async def test_empty_batch(make_backend) -> None:
    assert await make_backend().complete([]) == []


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_backend_survives_a_new_event_loop_per_batch(server: FakeOpenAIServer) -> None:
    # Sync callers may asyncio.run each batch; the client bound to the old loop is replaced.
    backend = OpenAIBackend("test-model", base_url=server.url)
    assert asyncio.run(backend.complete([ask("one")]))[0].text == "one"
    assert asyncio.run(backend.complete([ask("two")]))[0].text == "two"
    asyncio.run(backend.aclose())
    # The first loop's socket could not be closed from the second loop; reap it here so its
    # ResourceWarning is not blamed on a later test.
    gc.collect()


# --- retries ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_honours_retry_after_seconds(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(429, {"error": "slow down"}, {"Retry-After": "1"})]
    backend = make_backend()
    [reply] = await backend.complete([ask("again")])
    assert reply.text == "again" and reply.error is None
    assert backend._sleep.delays == [1.0]
    assert len(server.bodies) == 2


@pytest.mark.asyncio
async def test_retry_after_http_date_is_capped(server: FakeOpenAIServer, make_backend) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=5), usegmt=True)
    server.script = [Canned(503, "busy", {"Retry-After": later})]
    backend = make_backend(max_backoff_s=2.5)
    [reply] = await backend.complete([ask("q")])
    assert reply.error is None
    assert backend._sleep.delays == [2.5]


@pytest.mark.asyncio
async def test_503_twice_then_ok_with_jittered_backoff(
    server: FakeOpenAIServer, make_backend
) -> None:
    server.script = [Canned(503, "overloaded"), Canned(503, "overloaded")]
    backend = make_backend(backoff_s=0.5)
    backend._rng = random.Random(7)
    [reply] = await backend.complete([ask("fine")])
    assert reply.text == "fine"
    delays = backend._sleep.delays
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0
    # Full jitter: uniform(0, cap) drawn from the injected RNG.
    expected = random.Random(7)
    assert delays == [expected.uniform(0, 0.5), expected.uniform(0, 1.0)]


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_other_gateway_errors_are_retried(
    server: FakeOpenAIServer, make_backend, status: int
) -> None:
    server.script = [Canned(status, "oops")]
    [reply] = await make_backend().complete([ask("q")])
    assert reply.error is None and len(server.bodies) == 2


@pytest.mark.asyncio
async def test_retries_exhausted_reports_last_error(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(503, {"error": "still down"}) for _ in range(3)]
    backend = make_backend(max_retries=2, backoff_s=10.0, max_backoff_s=1.0)
    [reply] = await backend.complete([ask("q")])
    assert reply.finish_reason == "error" and reply.text == ""
    assert "HTTP 503" in reply.error and "still down" in reply.error
    assert "3 attempts" in reply.error
    assert len(server.bodies) == 3
    assert len(backend._sleep.delays) == 2
    assert all(0 <= d <= 1.0 for d in backend._sleep.delays)  # capped by max_backoff_s


@pytest.mark.asyncio
async def test_400_is_not_retried(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(400, {"error": {"message": "unknown field 'grammar'"}})]
    backend = make_backend()
    [reply] = await backend.complete([ask("q")])
    assert reply.finish_reason == "error" and reply.text == ""
    assert "HTTP 400" in reply.error and "unknown field" in reply.error
    assert "\n" not in reply.error
    assert len(server.bodies) == 1 and backend._sleep.delays == []


@pytest.mark.asyncio
async def test_one_failure_does_not_lose_the_batch(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(401, "bad key")]
    replies = await make_backend(concurrency=1).complete([ask("a"), ask("b")])
    assert replies[0].finish_reason == "error" and "HTTP 401" in replies[0].error
    assert replies[1].text == "b"


@pytest.mark.asyncio
async def test_timeout_is_retried_then_reported(server: FakeOpenAIServer, make_backend) -> None:
    server.script = [Canned(body=ok_body(), delay_s=0.5) for _ in range(2)]
    backend = make_backend(timeout_s=0.05, max_retries=1)
    [reply] = await backend.complete([ask("q")])
    assert reply.finish_reason == "error"
    assert "no complete reply" in reply.error and "within 0.05 s" in reply.error
    assert "2 attempts" in reply.error
    # the client gave up on the second attempt after 50 ms, possibly before the server's
    # handler thread had read it: give the server a moment to record what it received
    for _ in range(200):
        if len(server.bodies) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(server.bodies) == 2 and len(backend._sleep.delays) == 1
    assert reply.latency_s >= 0.1  # latency covers every attempt


@pytest.mark.asyncio
async def test_connect_error_is_retried_then_reported(make_backend) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = make_backend(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    [reply] = await backend.complete([ask("q")])
    assert reply.finish_reason == "error" and "ConnectError" in reply.error
    assert len(backend._sleep.delays) == 2


# --- helpers ----------------------------------------------------------------------------


def test_retry_after_parsing() -> None:
    assert _retry_after(None) is None
    assert _retry_after("garbage") is None
    assert _retry_after(" 2.5 ") == 2.5
    assert _retry_after("-3") == 0.0
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True)
    assert _retry_after(past) == 0.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= _retry_after(soon) <= 30


@given(
    attempt=st.integers(0, 20),
    backoff_s=st.floats(0.0, 10.0),
    max_backoff_s=st.floats(0.0, 60.0),
)
def test_jittered_backoff_stays_in_bounds(
    attempt: int, backoff_s: float, max_backoff_s: float
) -> None:
    backend = OpenAIBackend(
        "m", base_url="http://x", backoff_s=backoff_s, max_backoff_s=max_backoff_s
    )
    wait = backend._backoff(attempt, None)
    assert 0 <= wait <= min(max_backoff_s, backoff_s * 2**attempt)
    assert backend._backoff(attempt, 1e9) == max_backoff_s
