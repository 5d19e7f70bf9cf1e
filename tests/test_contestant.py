"""A served model as a contestant: `minsky eval --society openai:URL#MODEL`.

`split_endpoint` and `timeout_from_env` parse the spec and the timeout; `society.load`
turns an `openai:` ref into `single`'s member asked through that server; and `minsky eval`
then scores it like any society. A small OpenAI-compatible server runs in a background
thread (standard library only) and records every request body it gets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from minsky.backends.openai import TIMEOUT_ENV, split_endpoint, timeout_from_env
from minsky.builtin import _openai
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.plugin_api import BackendSettings
from minsky.results import FAILED
from minsky.society import contestant, load

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
ENV_VARS = ("MINSKY_OPENAI_BASE_URL", "OPENAI_BASE_URL", "MINSKY_OPENAI_API_KEY",
            "OPENAI_API_KEY", TIMEOUT_ENV, *PROXY_VARS)
REPLY = "9 + 9 = 18, so the answer is 18.\nAnswer: 18"
SINGLE_ROLE = ("You are a careful problem solver. You reason step by step and check your "
               "arithmetic.")


class FakeServer:
    """An OpenAI-compatible chat-completions server that records what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200  # anything else: that status, with Retry-After: 0
        self.lock = threading.Lock()
        self.url = ""

    def base(self, model: str) -> str:
        return f"openai:{self.url}#{model}"


def _handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.paths.append(self.path)
                state.bodies.append(json.loads(raw))
            if state.status != 200:
                self._send(state.status, {"error": {"message": "overloaded"}},
                           {"Retry-After": "0"})
                return
            self._send(200, {
                "id": "chatcmpl-1", "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": REPLY}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
            })

        def _send(self, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
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
    # hermetic: a developer's base URL, key, timeout or HTTP proxy must not leak into a test
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def bench_file(path: Path) -> Path:
    """Two GSM8K-style cases: the fake server's "18" is right for the first only."""
    rows = [{"question": "What is 9 + 9?", "answer": "9 + 9 = 18\n#### 18"},
            {"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_eval(*args: str) -> Result:
    return CliRunner().invoke(main, ["eval", *args, "--json"])


def case_rows(out: Path) -> list[dict[str, Any]]:
    return [r for line in out.read_text().splitlines() if "case" in (r := json.loads(line))]


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- split_endpoint and timeout_from_env ----------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("qwen", (None, "qwen")),
    ("gpt-4o-mini", (None, "gpt-4o-mini")),
    ("http://127.0.0.1:8000/v1#qwen", ("http://127.0.0.1:8000/v1", "qwen")),
    ("https://api.example.com/v1#org/model:7b", ("https://api.example.com/v1", "org/model:7b")),
])
def test_split_endpoint_splits_url_and_model(spec: str, expected: tuple[str | None, str]) -> None:
    assert split_endpoint(spec) == expected


@pytest.mark.parametrize(("spec", "fragment"), [
    ("", "give a model name"),
    ("   ", "give a model name"),
    ("ftp://host/v1#m", "not an http(s) URL"),
    ("127.0.0.1:8000/v1#m", "not an http(s) URL"),
    ("#m", "not an http(s) URL"),
    ("http://#m", "not an http(s) URL"),
    ("http://127.0.0.1:8000/v1#", "no model name after '#'"),
    ("http://127.0.0.1:8000/v1#  ", "no model name after '#'"),
])
def test_split_endpoint_refuses_malformed_specs_in_one_line(spec: str, fragment: str) -> None:
    with pytest.raises(MinskyError) as info:
        split_endpoint(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_timeout_defaults_to_120_seconds() -> None:
    assert timeout_from_env() == 120.0
    assert timeout_from_env(default=7.0) == 7.0


@pytest.mark.parametrize(("raw", "expected"), [("0.5", 0.5), ("600", 600.0),
                                               ("86400", 86400.0)])
def test_timeout_reads_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str,
                                       expected: float) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    assert timeout_from_env() == expected


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "", "86401", "nan", "inf"])
def test_a_bad_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    with pytest.raises(MinskyError) as info:
        timeout_from_env()
    assert TIMEOUT_ENV in str(info.value) and "\n" not in str(info.value)


def test_the_openai_backend_takes_its_server_and_deadlines_from_spec_and_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = BackendSettings()
    backend: Any = _openai("http://127.0.0.1:9/v1/#qwen", settings)
    assert (backend.model, backend.base_url) == ("qwen", "http://127.0.0.1:9/v1")
    assert (backend.timeout_s, backend.deadline_s) == (120.0, 180.0)
    monkeypatch.setenv(TIMEOUT_ENV, "600")
    backend = _openai("http://127.0.0.1:9/v1#qwen", settings)
    assert (backend.timeout_s, backend.deadline_s) == (600.0, 900.0)


def test_the_openai_backend_still_refuses_a_remote_server_in_tests() -> None:
    with pytest.raises(MinskyError, match="real models are switched off"):
        _openai("https://api.example.com/v1#qwen", BackendSettings())


# -- society.load: an openai: ref is single's member on that server --------------------------


def test_an_openai_ref_is_single_on_that_server() -> None:
    single = load("single")
    soc = load("openai:http://127.0.0.1:8000/v1#qwen2.5-7b")
    assert soc.name == "qwen2.5-7b"
    assert soc.config.organisation == single.config.organisation == "single"
    assert len(soc.agents) == 1
    agent, base = soc.agents[0], single.agents[0]
    assert agent.model == "openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
    assert agent.role == base.role == SINGLE_ROLE
    assert agent.options == base.options
    assert agent.options.temperature == 0.0 and agent.options.max_tokens == 384
    budget = soc.config.budget
    assert budget.max_tokens == 10_000_000 and budget.timeout_s == 3600


@pytest.mark.parametrize(("ref", "name"), [
    ("openai:qwen", "qwen"),
    ("openai:http://h:1/v1#org/model:7b", "org-model-7b"),
    ("openai:http://h:1/v1#7b-chat", "m-7b-chat"),
    ("openai:http://h:1/v1#_x", "m-_x"),
    ("openai:http://h:1/v1#a b\tc", "a-b-c"),
    ("openai:http://h:1/v1#" + "x" * 100, "x" * 64),
    ("openai:http://h:1/v1#" + "9" * 100, "m-" + "9" * 62),
])
def test_the_contestant_is_named_after_the_model(ref: str, name: str) -> None:
    soc = contestant(ref)
    assert soc.name == name
    assert len(soc.name) <= 64
    assert soc.agents[0].model == ref


def test_model_override_does_not_replace_the_contestant_model() -> None:
    ref = "openai:http://127.0.0.1:8000/v1#qwen"
    soc = load(ref, model="echo:")
    assert soc.agents[0].model == ref
    assert load("single", model="echo:").agents[0].model == "echo:"


def test_an_existing_file_named_like_an_openai_ref_is_a_society_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    # "openai:x" is a legal file name on POSIX; an existing file wins over the ref
    Path("openai:x").write_text('name = "from-file"\norganisation = "single"\n'
                                'model = "echo:"\n[[agents]]\nname = "solver"\n')
    assert load("openai:x").name == "from-file"


@pytest.mark.parametrize("ref", ["openai:", "openai:ftp://h/v1#m", "openai:http://h:1/v1#"])
def test_a_malformed_openai_ref_does_not_load(ref: str) -> None:
    with pytest.raises(MinskyError):
        load(ref)


# -- minsky eval against the server ---------------------------------------------------------


def test_eval_scores_a_served_model_like_a_society(server: FakeServer, tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "mini.jsonl")
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", server.base("qwen-7b"),
                      "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = case_rows(out)
    assert {r["society"] for r in rows} == {"qwen-7b"}
    assert {r["gold"]: r["correct"] for r in rows} == {"18": True, "4": False}
    assert all(r["status"] == "ok" and r["answer"] == "18" for r in rows)
    assert all(r["calls"] == 1 for r in rows)
    assert all((r["prompt_tokens"], r["completion_tokens"]) == (50, 12) for r in rows)
    summary = json.loads(result.stdout)
    [res] = summary["results"]
    assert (res["society"], res["n"], res["correct"], res["failed"]) == ("qwen-7b", 2, 1, 0)
    # exactly single's member messages and options, for the model after '#'
    assert len(server.bodies) == 2
    assert set(server.paths) == {"/v1/chat/completions"}
    questions = set()
    for body in server.bodies:
        assert body["model"] == "qwen-7b"
        assert body["temperature"] == 0.0 and body["max_tokens"] == 384
        messages = body["messages"]
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[0]["content"] == SINGLE_ROLE
        user = messages[1]["content"]
        assert user.startswith("What is ")
        assert 'end with a line "The answer is N."' in user
        questions.add(user.splitlines()[0])
    assert questions == {"What is 9 + 9?", "What is 2 + 2?"}


def test_the_contestant_gets_what_single_gets(server: FakeServer, tmp_path: Path) -> None:
    """The same question to `single` on the server (via --model) and to the contestant:
    the server sees the same messages and options."""
    bench = bench_file(tmp_path / "mini.jsonl")
    ref = server.base("m")
    first = run_eval("--bench", str(bench), "--society", "single", "--model", ref,
                     "--out", str(tmp_path / "a.jsonl"), "--limit", "1")
    assert first.exit_code == 0, first.output
    second = run_eval("--bench", str(bench), "--society", ref,
                      "--out", str(tmp_path / "b.jsonl"), "--limit", "1")
    assert second.exit_code == 0, second.output
    via_single, via_contestant = server.bodies
    assert via_single == via_contestant


def test_model_option_leaves_the_contestant_on_its_server(server: FakeServer,
                                                          tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "mini.jsonl")
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", "single",
                      "--society", server.base("served"), "--model", "echo:",
                      "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = case_rows(out)
    assert sorted({r["society"] for r in rows}) == ["served", "single"]
    served = {r["gold"]: r["correct"] for r in rows if r["society"] == "served"}
    assert served == {"18": True, "4": False}
    # single ran on echo: only the contestant's two cases reached the server
    assert len(server.bodies) == 2
    assert {b["model"] for b in server.bodies} == {"served"}
    names = [r["society"] for r in json.loads(result.stdout)["results"]]
    assert names == ["single", "served"]


@pytest.mark.parametrize(("ref", "fragment"), [
    ("openai:", "give a model name"),
    ("openai:ftp://127.0.0.1/v1#m", "not an http(s) URL"),
    ("openai:127.0.0.1:8000/v1#m", "not an http(s) URL"),
    ("openai:http://127.0.0.1:8000/v1#", "no model name after '#'"),
])
def test_eval_with_a_bad_spec_is_a_one_line_error(tmp_path: Path, ref: str,
                                                  fragment: str) -> None:
    bench = bench_file(tmp_path / "mini.jsonl")
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", ref, "--out", str(out))
    assert_one_line_error(result, fragment)
    assert not out.exists() or case_rows(out) == []


@pytest.mark.parametrize("raw", ["abc", "0"])
def test_eval_with_a_bad_timeout_is_a_one_line_error(server: FakeServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     raw: str) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    bench = bench_file(tmp_path / "mini.jsonl")
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", server.base("m"), "--out", str(out))
    assert_one_line_error(result, TIMEOUT_ENV)
    assert server.bodies == []
    assert not out.exists() or case_rows(out) == []


def test_a_failing_server_is_a_failed_case_not_a_wrong_answer(server: FakeServer,
                                                               tmp_path: Path) -> None:
    server.status = 500  # every attempt, with Retry-After: 0 so the retries do not wait
    bench = bench_file(tmp_path / "mini.jsonl")
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", server.base("down"),
                      "--out", str(out))
    # every case errored: exit 1 with one line saying a rerun retries them
    assert result.exit_code == 1, result.output
    rows = case_rows(out)
    assert len(rows) == 2
    assert all(r["society"] == "down" and r["status"] in FAILED for r in rows)
    # retried (1 + 4 attempts per case), then given up
    assert len(server.bodies) == 2 * 5
    summary = json.loads(result.stdout)
    # no answer at all: nothing is scored, so no accuracy of 0 % appears
    down = [r for r in summary["results"] if r["society"] == "down"]
    assert down and down[0]["n"] == 0 and down[0]["failed"] == 2
    assert down[0]["accuracy"] is None
    # and a rerun against a healthy server retries the failed cases
    server.status = 200
    again = run_eval("--bench", str(bench), "--society", server.base("down"),
                     "--out", str(out))
    assert again.exit_code == 0, again.output
    [res] = json.loads(again.stdout)["results"]
    assert (res["society"], res["n"], res["correct"], res["failed"]) == ("down", 2, 1, 0)


def test_openai_without_a_server_or_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MINSKY_OPENAI_BASE_URL", "OPENAI_BASE_URL", "MINSKY_OPENAI_API_KEY",
                "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MinskyError, match="no server given; set MINSKY_OPENAI_BASE_URL"):
        _openai("gpt-x", BackendSettings())
    # a key for the public endpoint is a deliberate choice: no refusal for want of a server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(MinskyError, match="real models are switched off"):
        _openai("gpt-x", BackendSettings())
