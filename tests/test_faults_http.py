"""Fault injection, HTTP: the OpenAI backend and the commands against a hostile server.

Each test asserts a bounded time (and, for the big bodies, bounded memory), a clear
message, and that the other cases' work is kept. The server is `hostile_server.py`, a
real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hostile_server import HostileServer

from minsky.backends.openai import OpenAIBackend
from minsky.cli import main
from minsky.messages import ChatReply, ChatRequest, Message, Options


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """The hostile server, with the OpenAI backend pointed at it."""
    server = HostileServer()
    monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", server.url)
    for name in ("OPENAI_BASE_URL", "MINSKY_OPENAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield server
    finally:
        server.close()


async def _no_sleep(seconds: float) -> None:
    pass


def call(server: HostileServer, behaviour: str, **kwargs: Any) -> tuple[ChatReply, float]:
    """One request for `behaviour`; the reply and the seconds it took."""
    backend = OpenAIBackend(behaviour, base_url=kwargs.pop("base_url", server.url), **kwargs)
    if kwargs.get("deadline_s") is None:
        backend._sleep = _no_sleep  # retries are counted, not waited for

    async def go() -> ChatReply:
        try:
            request = ChatRequest([Message("user", "q")], Options(max_tokens=16))
            # a bound of the test's own: before the fixes some of these never returned
            (reply,) = await asyncio.wait_for(backend.complete([request]), 30)
            return reply
        finally:
            await backend.aclose()

    start = time.perf_counter()
    reply = asyncio.run(go())
    return reply, time.perf_counter() - start


# --- one bad reply is that request's error -----------------------------------------------


@pytest.mark.parametrize(("behaviour", "says"), [
    ("content-list", "content is list, expected a string"),
    ("content-number", "content is int, expected a string"),
    ("truncated", "malformed response"),
    ("nested", "malformed response"),
])
def test_a_malformed_reply_is_an_error_reply(hostile: HostileServer, behaviour: str,
                                             says: str) -> None:
    reply, seconds = call(hostile, behaviour)
    assert reply.finish_reason == "error" and says in (reply.error or "")
    assert hostile.hits[behaviour] == 1  # a malformed reply is not worth another try
    assert seconds < 5


def test_a_lone_surrogate_in_a_reply_becomes_a_replacement_character(
        hostile: HostileServer) -> None:
    reply, _ = call(hostile, "surrogate")
    assert reply.finish_reason == "stop" and reply.text == "x \ufffd y"
    reply.text.encode("utf-8")  # SQLite and stdout take it now


def test_negative_usage_counts_as_zero(hostile: HostileServer) -> None:
    reply, _ = call(hostile, "negative")
    assert reply.usage.prompt_tokens == 0 and reply.usage.completion_tokens == 0


# --- retries: bounded, and only where they can help ---------------------------------------


def test_500_is_retried_a_bounded_number_of_times(hostile: HostileServer) -> None:
    reply, seconds = call(hostile, "500", max_retries=4)
    assert "HTTP 500" in (reply.error or "") and "after 5 attempts" in (reply.error or "")
    assert hostile.hits["500"] == 5 and seconds < 5


def test_a_huge_retry_after_is_cut_by_the_request_deadline(hostile: HostileServer) -> None:
    reply, seconds = call(hostile, "429", deadline_s=1.5)
    assert "HTTP 429" in (reply.error or "") and "1.5 s deadline" in (reply.error or "")
    assert seconds < 3


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "not a url"])
def test_an_invalid_base_url_is_not_retried(hostile: HostileServer, url: str) -> None:
    reply, seconds = call(hostile, "ok", base_url=url, max_retries=4)
    assert reply.finish_reason == "error"
    assert "after" not in (reply.error or "")  # one attempt, no "(after 5 attempts)"
    assert seconds < 1


# --- deadlines: a silent or trickling server holds a request for timeout_s at most -------


@pytest.mark.parametrize("behaviour", ["silent", "loris"])
def test_each_attempt_has_a_total_deadline(hostile: HostileServer, behaviour: str) -> None:
    reply, seconds = call(hostile, behaviour, timeout_s=1.0, max_retries=1)
    assert reply.finish_reason == "error"
    assert "no complete reply from" in (reply.error or "")
    assert "within 1 s" in (reply.error or "") and "2 attempts" in (reply.error or "")
    assert seconds < 4


def test_an_infinite_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", timeout_s=float("inf"))


# --- size: a body is read up to the cap and no further -----------------------------------


@pytest.mark.parametrize("behaviour", ["huge", "endless"])
def test_a_reply_body_is_size_capped(hostile: HostileServer, behaviour: str) -> None:
    tracemalloc.start()
    try:
        reply, seconds = call(hostile, behaviour)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.finish_reason == "error" and "limit" in (reply.error or "")
    assert peak < 80 * 1024 * 1024  # twice the 16 MB cap, and then some
    assert seconds < 15


# --- through the commands: one bad case is its own error row -----------------------------


def _questions(path: Path, questions: list[str]) -> Path:
    path.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions))
    return path


@pytest.mark.parametrize("behaviour", ["content-list", "surrogate", "nested"])
def test_batch_survives_a_bad_server_reply(hostile: HostileServer, tmp_path: Path,
                                           behaviour: str) -> None:
    questions = _questions(tmp_path / "q.jsonl", ["one?", "two?", "three?"])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["batch", str(questions), "--society", "single",
                                       "--model", f"openai:{behaviour}", "--out", str(out)])
    expected = "ok" if behaviour == "surrogate" else "error"
    # a failed question is not an answer: the command says so and exits 1
    assert result.exit_code == (0 if expected == "ok" else 1), result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["1", "2", "3"]
    assert {r["status"] for r in rows} == {expected}


def test_eval_survives_a_bad_server_reply(hostile: HostileServer, tmp_path: Path) -> None:
    bench = tmp_path / "mini.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                         "answer": f"#### {2 * i}"}) + "\n" for i in range(3)))
    out = tmp_path / "res.jsonl"
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--society", "single",
                                       "--model", "openai:content-number", "--out", str(out),
                                       "--json"])
    assert result.exit_code == 1, result.output
    assert "3 case(s) failed" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len([r for r in rows if "case" in r]) == 3
    assert {r["status"] for r in rows if "case" in r} == {"error"}


def test_ask_prints_a_surrogate_reply(hostile: HostileServer) -> None:
    result = CliRunner().invoke(main, ["ask", "q", "--society", "single",
                                       "--model", "openai:surrogate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["members"][0]["text"] == "x \ufffd y"


def test_a_society_timeout_says_what_timed_out(hostile: HostileServer, tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_text('name = "s"\norganisation = "single"\nmodel = "openai:silent"\n'
                       "[budget]\ntimeout_s = 1\n[[agents]]\nname = \"a\"\n")
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["ask", "q", "--society", str(society), "--json"])
    assert time.perf_counter() - start < 5
    data = json.loads(result.stdout)
    assert data["status"] == "timeout"
    assert "timeout_s = 1 s" in data["error"] and "round 1" in data["error"]


def test_negative_usage_cannot_switch_the_token_budget_off(hostile: HostileServer,
                                                           tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_text('name = "s"\norganisation = "single"\nmodel = "openai:negative"\n'
                       '[[agents]]\nname = "a"\n')
    result = CliRunner().invoke(main, ["ask", "q", "--society", str(society), "--json"])
    usage = json.loads(result.stdout)["usage"]
    # nought for a reply that is there would switch it off too: the text is counted instead
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_waiting_for_a_slot_does_not_use_up_the_deadline(hostile: HostileServer) -> None:
    # one slot, three requests to a server that answers at once: the third waits for
    # two others, which must not count against its own deadline
    backend = OpenAIBackend("ok", base_url=hostile.url, concurrency=1, deadline_s=0.5)

    async def go() -> list[ChatReply]:
        slow = backend._post

        async def post(body: dict[str, Any], deadline: float) -> ChatReply:
            await asyncio.sleep(0.3)  # a server that takes 0.3 s per reply
            return await slow(body, deadline)

        backend._post = post  # type: ignore[method-assign]
        try:
            request = ChatRequest([Message("user", "q")], Options(max_tokens=16))
            return await backend.complete([request] * 3)
        finally:
            await backend.aclose()

    replies = asyncio.run(go())
    assert [r.finish_reason for r in replies] == ["stop"] * 3, [r.error for r in replies]
