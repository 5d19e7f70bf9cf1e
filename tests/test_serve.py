"""`minsky serve` end to end: a real uvicorn server on a free loopback port, societies on
the scripted fake backends, and the official `openai` client (raw httpx where the client
hides what is checked: keep-alive comments, missing keys)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner
from conftest import society_dict

from minsky.backends.base import Backend
from minsky.backends.fakes import FunctionBackend, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.serve.app import Served, ServeSettings, create_app
from minsky.serve.server import BackgroundServer
from minsky.society import Society

KEY = "sk-test-key"
Q = "What is 6*7?"
ANSWER = "The answer is 42."


def trio(make_society: Callable[..., Society], **kwargs: Any) -> Society:
    """A vote of three solvers on the fake model."""
    return make_society(society_dict(name="trio", **kwargs))


class CachedFunction(FunctionBackend):
    """A fake whose every reply reports 2 prompt tokens served from cache."""

    def answer(self, request: ChatRequest) -> ChatReply:
        reply = super().answer(request)
        reply.usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens, 2)
        return reply


@contextmanager
def serving(tmp_path: Path, societies: list[Society], backend: Backend,
            **settings: Any) -> Iterator[tuple[BackgroundServer, Served]]:
    log = RunLog(tmp_path / "serve.db")
    runner = Runner(Backends(overrides={"fake:a": backend}), log)
    settings.setdefault("api_key", KEY)
    app = create_app({s.name: s for s in societies}, runner, ServeSettings(**settings))
    try:
        with BackgroundServer(app) as server:
            yield server, app.state.served
    finally:
        log.close()


def client(server: BackgroundServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=20)


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(tmp_path / "serve.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        db.close()


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def ask(text: str = Q) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_lists_societies_with_minsky_extension(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        models = client(server).models.list()
        assert [m.id for m in models.data] == ["trio"]
        card = models.data[0].to_dict()
        assert card["minsky"]["organisation"] == "vote"
        assert card["minsky"]["members"] == ["solver-1", "solver-2", "solver-3"]
        assert card["minsky"]["models"] == ["fake:a"]
        assert client(server).models.retrieve("trio").id == "trio"


def test_completion_answers_with_usage_extension_and_log(tmp_path, make_society) -> None:
    backend = CachedFunction(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        resp = client(server).chat.completions.create(model="trio", messages=ask())
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "42"
    assert choice.finish_reason == "stop"
    prompt = sum(len(m.content.split()) for r in backend.requests for m in r.messages)
    assert resp.usage.prompt_tokens == prompt
    assert resp.usage.completion_tokens == 3 * len(ANSWER.split())
    assert resp.usage.total_tokens == prompt + 3 * len(ANSWER.split())
    assert resp.usage.prompt_tokens_details.cached_tokens == 3 * 2
    ext = resp.to_dict()["minsky"]
    assert ext["status"] == "ok" and ext["answer"] == "42"
    assert ext["tally"] and [m["name"] for m in ext["members"]] == [
        "solver-1", "solver-2", "solver-3"]
    [run] = runs(tmp_path)
    assert (run["id"], run["status"], run["answer"], run["question"]) == (
        ext["run_id"], "ok", "42", Q)


def test_multi_turn_reaches_every_member_as_messages(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 6*7?"},
    ]
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        resp = client(server).chat.completions.create(model="trio", messages=messages)
    assert resp.choices[0].message.content == "42"
    assert len(backend.requests) == 3
    for request in backend.requests:
        system, *turns = request.messages
        assert system.role == "system" and system.content.endswith("\n\nAnswer briefly.")
        assert [(m.role, m.content) for m in turns[:2]] == [
            ("user", "What is 2+2?"), ("assistant", "4")]
        assert turns[2].role == "user" and turns[2].content.startswith("And 6*7?")
    [run] = runs(tmp_path)
    assert run["question"] == "And 6*7?"
    db = sqlite3.connect(tmp_path / "serve.db")
    kinds = [k for (k,) in db.execute("SELECT kind FROM events WHERE run_id = ?", (run["id"],))]
    db.close()
    assert "conversation" in kinds


def test_stream_shows_progress_then_answer_then_usage(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        stream = client(server).chat.completions.create(
            model="trio", messages=ask(), stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    kinds = []
    for c in chunks[1:]:
        if not c.choices:
            kinds.append("usage")
            continue
        d = c.choices[0].delta.to_dict()
        kinds.append("reasoning" if d.get("reasoning_content") else
                     "content" if d.get("content") else "finish")
    # progress first, then the answer, its finish, the usage last
    assert kinds == ["reasoning"] * kinds.count("reasoning") + ["content", "finish", "usage"]
    reasoning = "".join(c.choices[0].delta.to_dict().get("reasoning_content", "")
                        for c in chunks if c.choices)
    assert reasoning.startswith("[round 1: answer (3 asks)]")
    for name in ("solver-1", "solver-2", "solver-3"):
        assert f"{name} · answer: {ANSWER}" in reasoning
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "42"
    finish = chunks[-2]
    assert finish.choices[0].finish_reason == "stop"
    ext = finish.to_dict()["minsky"]
    assert ext["status"] == "ok" and ext["answer"] == "42" and len(ext["members"]) == 3
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 3 * len(ANSWER.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_of_n_choices_keeps_them_apart(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        chunks = list(client(server).chat.completions.create(
            model="trio", messages=ask(), stream=True, n=2))
    by_index: dict[int, str] = {0: "", 1: ""}
    finishes, run_ids = {}, set()
    for c in chunks:
        for ch in c.choices:
            by_index[ch.index] += ch.delta.content or ""
            if ch.finish_reason:
                finishes[ch.index] = ch.finish_reason
                run_ids.add(c.to_dict()["minsky"]["run_id"])
    assert by_index == {0: "42", 1: "42"} and finishes == {0: "stop", 1: "stop"}
    assert run_ids == {r["id"] for r in runs(tmp_path)} and len(run_ids) == 2


class Gathering(Backend):
    """Answers only once `calls` batches are in flight together (else an error after 10 s):
    requests served one after another could never all be answered."""

    name = "gathering"

    def __init__(self, calls: int) -> None:
        self.calls, self.in_flight, self.most = calls, 0, 0

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(1000):
                if self.most >= self.calls:
                    return [ChatReply(ANSWER, Usage(1, 4)) for _ in requests]
                await asyncio.sleep(0.01)
            return [ChatReply("", finish_reason="error", error="alone") for _ in requests]
        finally:
            self.in_flight -= 1


def test_concurrent_requests_share_the_backends(tmp_path, make_society) -> None:
    gathering = Gathering(calls=4)
    with serving(tmp_path, [trio(make_society)], gathering) as (server, _), \
            ThreadPoolExecutor(4) as pool:
        c = client(server)
        answers = list(pool.map(
            lambda _: c.chat.completions.create(model="trio", messages=ask()), range(4)))
    assert [a.choices[0].message.content for a in answers] == ["42"] * 4
    assert gathering.most == 4
    assert len({a.to_dict()["minsky"]["run_id"] for a in answers}) == 4


def test_unsupported_and_invalid_fields_are_400_naming_the_field(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    with serving(tmp_path, [trio(make_society)], backend, max_concurrent=2) as (server, _):
        c = client(server)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"tools": [tool]}, "tools"),
            ({"logprobs": True}, "logprobs"),
            ({"response_format": {"type": "json_object"}}, "response_format"),
            ({"temperature": 3}, "temperature"),
            ({"extra_body": {"bogus": 1}}, "bogus"),
            ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages[0].role"),
            ({"model": "nope"}, "model"),
            ({"n": 3}, "n"),  # more choices than runs in flight (max_concurrent=2)
            ({"metadata": {"answer": "essay"}}, "metadata.answer"),
        ]
        for extra, field in cases:
            kwargs: dict[str, Any] = {"model": "trio", "messages": ask(), **extra}
            with pytest.raises(openai.APIStatusError) as err:
                c.chat.completions.create(**kwargs)
            assert err.value.status_code == (404 if field == "model" else 400), field
            assert err.value.param == field
            assert field in err.value.message
    assert backend.requests == []  # nothing reached a model
    assert runs(tmp_path) == []


def test_wrong_or_missing_key_is_401(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        with pytest.raises(openai.AuthenticationError) as err:
            client(server, key="wrong").chat.completions.create(model="trio", messages=ask())
        assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
        raw = httpx.get(f"{server.base_url}/models", timeout=10)
        assert raw.status_code == 401
        assert raw.json()["error"]["code"] == "invalid_api_key"
    assert backend.requests == []


def test_cancelled_stream_ends_its_run_and_frees_its_slot(tmp_path, make_society) -> None:
    slow = FunctionBackend(lambda r: ANSWER, delay_s=30.0)
    with serving(tmp_path, [trio(make_society)], slow, max_concurrent=1,
                 keepalive_s=0.1) as (server, served):
        c = client(server)
        stream = c.chat.completions.create(model="trio", messages=ask(), stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        assert served.slots.in_use == 1
        wait_until(lambda: len(slow.batches) == 1)  # the members are decoding
        stream.close()
        wait_until(lambda: served.slots.in_use == 0)
        wait_until(lambda: runs(tmp_path)[0]["status"] != "running")
        assert runs(tmp_path)[0]["status"] == "interrupted"
        # the freed slot takes the next request at once
        slow.delay_s = 0.0
        assert c.chat.completions.create(model="trio", messages=ask()).choices[0].message.\
            content == "42"


def test_a_client_gone_before_the_answer_cancels_its_run(tmp_path, make_society) -> None:
    slow = FunctionBackend(lambda r: ANSWER, delay_s=30.0)
    body = {"model": "trio", "messages": ask()}
    with serving(tmp_path, [trio(make_society)], slow, keepalive_s=0.1) as (server, served):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=1.0,
                       headers={"Authorization": f"Bearer {KEY}"})
        wait_until(lambda: served.slots.in_use == 0)
        wait_until(lambda: runs(tmp_path)[0]["status"] != "running")
    assert runs(tmp_path)[0]["status"] == "interrupted"


def test_a_failed_run_is_500_in_openai_format(tmp_path, make_society) -> None:
    empty = ScriptedBackend([])  # every call is an error reply
    with serving(tmp_path, [trio(make_society)], empty) as (server, _):
        with pytest.raises(openai.InternalServerError) as err:
            client(server).chat.completions.create(model="trio", messages=ask())
        assert err.value.code == "run_failed" and "no reply left" in err.value.message
        stream = client(server).chat.completions.create(model="trio", messages=ask(),
                                                        stream=True)
        with pytest.raises(openai.APIError, match="no reply left"):
            list(stream)
    assert [r["status"] for r in runs(tmp_path)] == ["error", "error"]


def test_keep_alive_comments_while_the_society_works(tmp_path, make_society) -> None:
    slow = FunctionBackend(lambda r: ANSWER, delay_s=0.6)
    body = {"model": "trio", "messages": ask(), "stream": True}
    with serving(tmp_path, [trio(make_society)], slow, keepalive_s=0.1) as (server, _), \
            httpx.stream("POST", f"{server.base_url}/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {KEY}"}, timeout=20) as resp:
        text = "".join(resp.iter_text())
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert ": keep-alive\n\n" in text
    assert text.endswith("data: [DONE]\n\n")


def test_full_queue_is_429_with_retry_after(tmp_path, make_society) -> None:
    slow = FunctionBackend(lambda r: ANSWER, delay_s=30.0)
    with serving(tmp_path, [trio(make_society)], slow, max_concurrent=1, max_queue=0,
                 keepalive_s=0.1) as (server, served):
        c = client(server)
        stream = c.chat.completions.create(model="trio", messages=ask(), stream=True)
        next(iter(stream))
        with pytest.raises(openai.RateLimitError) as err:
            c.chat.completions.create(model="trio", messages=ask())
        assert int(err.value.response.headers["retry-after"]) >= 1
        stream.close()
        wait_until(lambda: served.slots.in_use == 0)


def test_max_tokens_caps_the_budget_and_finishes_length(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        resp = client(server).chat.completions.create(model="trio", messages=ask(),
                                                      max_tokens=5)
    assert resp.choices[0].finish_reason == "length"
    assert resp.to_dict()["minsky"]["status"] == "max_tokens"
    assert all(r.options.max_tokens == 1 for r in backend.requests)  # 5 tokens / 3 members


async def _round_one_tokens(society: Society) -> int:
    backend = FunctionBackend(lambda r: ANSWER)
    result = await Runner(Backends(overrides={"fake:a": backend})).run(society, Q)
    assert result.status == "ok" and len(result.rounds) == 2
    return sum(t["prompt_tokens"] + t["completion_tokens"] for t in result.rounds[0].turns)


def test_a_length_stop_returns_the_leading_answer_so_far(tmp_path, make_society) -> None:
    duo = make_society(society_dict("debate", [{"name": "d", "group": "debater", "count": 2}],
                                    params={"rounds": 2}, name="duo"))
    cap = asyncio.run(_round_one_tokens(duo))  # round 1 fits, round 2 is over the budget
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [duo], backend) as (server, _):
        resp = client(server).chat.completions.create(model="duo", messages=ask(),
                                                      max_tokens=cap)
    assert resp.choices[0].finish_reason == "length"
    assert resp.to_dict()["minsky"]["status"] == "max_tokens"
    assert resp.choices[0].message.content == "42"  # both debaters' answer after round 1


def test_n_runs_concurrent_societies_with_temperature_and_seeds(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        resp = client(server).chat.completions.create(
            model="trio", messages=ask(), n=2, temperature=0.3, seed=7)
    assert [c.index for c in resp.choices] == [0, 1]
    ids = {c.to_dict()["minsky"]["run_id"] for c in resp.choices}
    assert len(ids) == 2 and {r["id"] for r in runs(tmp_path)} == ids
    assert {r.options.temperature for r in backend.requests} == {0.3}
    assert sorted(r.options.seed for r in backend.requests) == list(range(7, 13))
    assert resp.usage.completion_tokens == 6 * len(ANSWER.split())


def test_body_over_the_limit_is_413(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend, max_body_bytes=2048) as (server, _), \
            pytest.raises(openai.APIStatusError) as err:
        client(server).chat.completions.create(model="trio", messages=ask("x " * 2000))
    assert err.value.status_code == 413
    assert backend.requests == []


async def test_openai_backend_member_can_be_a_served_society(
        tmp_path, make_society, monkeypatch) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("MINSKY_OPENAI_API_KEY", KEY)
        outer = make_society(society_dict(
            name="outer", model="openai:trio",
            agents=[{"name": "team", "count": 1, "options": {"max_tokens": 4096}}]))
        runner = Runner(Backends(), RunLog(tmp_path / "outer.db"))
        try:
            result = await runner.run(outer, Q)
        finally:
            await runner.backends.aclose()
    assert result.status == "ok" and result.answer == "42"
    assert result.rounds[0].turns[0]["text"] == "42"
    assert result.usage.completion_tokens == 3 * len(ANSWER.split())  # the inner society's
    [inner] = runs(tmp_path)
    assert inner["status"] == "ok" and Q in inner["question"]


def test_cli_without_the_extra_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import fails as if not installed
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: minsky serve needs FastAPI and uvicorn: pip install 'minsky[serve]'")


def test_cli_bad_society_and_bad_limit_are_one_line(tmp_path) -> None:
    result = CliRunner().invoke(main, ["serve", "--society", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "file not found" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["serve", "--society", "vote3", "--max-concurrent", "0"])
    assert result.exit_code == 2
    assert result.output.startswith("error: option --max-concurrent:")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_serves_a_society_file_with_the_key_from_the_env(tmp_path) -> None:
    team = tmp_path / "team.toml"
    team.write_text('name = "team"\norganisation = "vote"\nmodel = "qwen0.5b"\n'
                    '[[agents]]\nname = "solver"\ncount = 2\n', encoding="utf-8")
    port = free_port()
    env = {**os.environ, "MINSKY_API_KEY": KEY,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "minsky", "serve", "--society", str(team), "--port", str(port),
         "--log", str(tmp_path / "cli.db")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False

        wait_until(up, timeout_s=30)
        url = f"http://127.0.0.1:{port}/v1"
        assert httpx.get(f"{url}/models", timeout=5).status_code == 401
        models = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0).models.list()
        assert [m.id for m in models.data] == ["team"]
        assert models.data[0].to_dict()["minsky"]["members"] == ["solver-1", "solver-2"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "serving 1 society at http://127.0.0.1:" in err
    assert "Traceback" not in err


def test_port_0_says_the_port_it_bound(tmp_path) -> None:
    team = tmp_path / "team.toml"
    team.write_text('name = "team"\norganisation = "single"\nmodel = "echo:"\n'
                    '[[agents]]\nname = "solver"\n', encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "minsky", "serve", "--society", str(team), "--port", "0",
         "--log", str(tmp_path / "cli.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("serving 1 society at http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert port != 0
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v1/nope", 404, "not_found"),
    ("POST", "/v2/chat/completions", 404, "not_found"),
    ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
    ("DELETE", "/v1/models", 405, "method_not_allowed"),
])
def test_no_such_route_or_method_is_an_openai_error(tmp_path, make_society, method: str,
                                                    path: str, status: int,
                                                    code: str) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        resp = httpx.request(method, f"http://127.0.0.1:{server.port}{path}", timeout=10)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error"
    assert f"{method} {path}" in error["message"] and error["param"] is None


def test_sampler_fields_reach_every_member(tmp_path, make_society) -> None:
    backend = FunctionBackend(lambda r: ANSWER)
    with serving(tmp_path, [trio(make_society)], backend) as (server, _):
        c = client(server)
        resp = c.chat.completions.create(
            model="trio", messages=ask(),
            extra_body={"top_k": 5, "min_p": 0.05, "repeat_penalty": 1.1})
        assert resp.choices[0].message.content == "42"
        assert {(r.options.top_k, r.options.min_p, r.options.repeat_penalty)
                for r in backend.requests} == {(5, 0.05, 1.1)}
        for field, bad in (("top_k", -1), ("min_p", 1.0), ("repeat_penalty", 0.5)):
            with pytest.raises(openai.BadRequestError) as err:
                c.chat.completions.create(model="trio", messages=ask(),
                                          extra_body={field: bad})
            assert err.value.param == field
