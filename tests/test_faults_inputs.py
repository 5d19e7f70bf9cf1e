"""Fault injection, bounded input (issue 28, section 3): every input has a bound, the
compressed and the nested ones too.

- A model server's reply is capped by the bytes it decodes to, counted as they are
  decoded, and one content encoding at most is accepted (a few hundred bytes gzip-encoded
  three times inflate to gigabytes).
- TOML and JSON nested deeper than any real input are one line (CLI) or a 400 in the
  OpenAI envelope (`serve`), never a RecursionError traceback or a 500.
- A number on the command line beyond what SQLite or the engine holds is one line that
  names its option.
- A judge prompt with a format spec or conversion is refused when it is loaded, before
  any contestant answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import society_dict

from minsky.backends.fakes import FunctionBackend
from minsky.backends.openai import OpenAIBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.inputs.limits import MAX_NESTING, check_depth, depth, load_toml
from minsky.messages import ChatReply, ChatRequest, Message, Options
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.serve.app import ServeSettings, create_app
from minsky.serve.server import BackgroundServer
from minsky.society import Society

# --- (a) a reply's cap counts decoded bytes; one encoding at most ------------------------

CAP = 1 << 20  # the backend's cap in these tests: 1 MiB
BOMB_BYTES = 64 << 20  # what the bomb inflates to: 64 times the cap


def _reply(text: str = "ok") -> bytes:
    return json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


@cache
def _bomb() -> bytes:
    """64 MiB of spaces (valid JSON whitespace) gzip-encoded: about 64 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(BOMB_BYTES >> 20)),
                     packer.flush()])


# behaviour (the request's model) → (Content-Encoding header lines, body)
REPLIES: dict[str, Callable[[], tuple[list[str], bytes]]] = {
    "gzip-ok": lambda: (["gzip"], gzip.compress(_reply("unzipped"))),
    "deflate-ok": lambda: (["deflate"], zlib.compress(_reply("inflated"))),
    "raw-deflate-ok": lambda: (["deflate"], zlib.compress(_reply("raw"))[2:-4]),
    "bomb": lambda: (["gzip"], _bomb()),
    "stacked": lambda: (["gzip, gzip"], gzip.compress(gzip.compress(_reply()))),
    "stacked-lines": lambda: (["gzip", "gzip"], gzip.compress(gzip.compress(_reply()))),
    "stacked-bomb": lambda: (["gzip, gzip, gzip"], gzip.compress(gzip.compress(_bomb()))),
    "unknown": lambda: (["br"], b"\x1b\x00\x00"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        encodings, data = REPLIES[body["model"]]()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for encoding in encodings:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client hung up, as a bounded one does
            self.wfile.write(data)


@pytest.fixture(scope="module")
def encoded_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 sending encoded replies; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def call(url: str, behaviour: str) -> tuple[ChatReply, int]:
    """One request; the reply and the peak memory traced while it ran."""
    backend = OpenAIBackend(behaviour, base_url=url, max_reply_bytes=CAP, max_retries=0)

    async def go() -> ChatReply:
        try:
            request = ChatRequest([Message("user", "q")], Options(max_tokens=16))
            (reply,) = await asyncio.wait_for(backend.complete([request]), 30)
            return reply
        finally:
            await backend.aclose()

    _bomb()  # built before the trace starts
    tracemalloc.start()
    try:
        reply = asyncio.run(go())
        return reply, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_stopped_at_the_cap_as_it_inflates(encoded_server: str) -> None:
    # encoded replies within the cap are read and decoded as ever
    for behaviour, text in [("gzip-ok", "unzipped"), ("deflate-ok", "inflated"),
                            ("raw-deflate-ok", "raw")]:
        reply, _ = call(encoded_server, behaviour)
        assert reply.finish_reason == "stop" and reply.text == text, reply.error
    reply, peak = call(encoded_server, "bomb")
    assert reply.finish_reason == "error" and "limit" in (reply.error or ""), reply.error
    # 64 KiB on the wire, 64 MiB decoded: no more than a few times the cap is ever held
    assert peak < 8 * CAP, peak


@pytest.mark.parametrize("behaviour", ["stacked", "stacked-lines", "stacked-bomb"])
def test_stacked_content_encodings_are_refused(encoded_server: str, behaviour: str) -> None:
    reply, peak = call(encoded_server, behaviour)
    assert reply.finish_reason == "error", reply.text[:80]
    assert "stacked content encodings" in (reply.error or ""), reply.error
    assert peak < 8 * CAP, peak


def test_an_unknown_content_encoding_is_named(encoded_server: str) -> None:
    reply, _ = call(encoded_server, "unknown")
    assert reply.finish_reason == "error" and "content encoding 'br'" in (reply.error or "")


# --- (b) nested TOML and JSON -----------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result, *names: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def nested_array(n: int) -> str:
    return "[" * n + "]" * n


def nested_table(n: int) -> str:
    return "{a = " * n + "1" + "}" * n


@pytest.mark.parametrize("value", [nested_array(40), nested_array(5000),
                                   nested_table(40), nested_table(5000),
                                   "[" + "{a = [" * 30 + "]}" * 30 + "]"])
def test_deep_toml_is_one_error(value: str) -> None:
    with pytest.raises(MinskyError, match=r"^f\.toml: nested more than 32 levels"):
        load_toml(f"x = {value}\n", "f.toml")


def test_toml_within_the_bound_and_invalid_toml() -> None:
    assert depth(load_toml(f"x = {nested_array(MAX_NESTING - 1)}\n", "f")) == MAX_NESTING
    with pytest.raises(MinskyError, match="^f: not valid TOML"):
        load_toml("x = [", "f")


def test_check_depth_does_not_recurse() -> None:
    deep: list[Any] = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    with pytest.raises(MinskyError, match="where: nested more than 5 levels"):
        check_depth(deep, 5, "where")
    check_depth({"a": [1, {"b": 2}]}, 3, "where")


@pytest.mark.parametrize("value", [nested_array(3000), nested_table(3000)])
def test_deep_economy_rules_are_one_line(tmp_path: Path, value: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f"reward = {value}\n")
    one_line_error(run("economy", "run", "-s", "single", "-m", "echo:", "--bench",
                       str(tmp_path / "none.jsonl"), "--rules", str(rules)),
                   str(rules), "nested")


@pytest.mark.parametrize("value", [nested_array(3000), nested_table(3000)])
def test_a_deep_society_file_is_one_line(tmp_path: Path, value: str) -> None:
    soc = tmp_path / "s.toml"
    soc.write_text(f'name = "x"\norganisation = "vote"\nparams = {{a = {value}}}\n'
                   '[[agents]]\nname = "a"\n')
    one_line_error(run("ask", "q", "-s", str(soc), "-m", "echo:"), str(soc), "nested")


@pytest.fixture
def served(tmp_path: Path, make_society: Callable[..., Society]) -> Iterator[str]:
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(lambda r: "7")}),
                    RunLog(tmp_path / "serve.db"))
    app = create_app({"trio": make_society(society_dict(name="trio"))}, runner,
                     ServeSettings(max_body_bytes=1 << 20))
    with BackgroundServer(app) as server:
        yield server.base_url


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000,
                                    '{"a": ' * 5000 + "1" + "}" * 5000,
                                    "[" * 200 + "]" * 200, '{"a": ' * 200 + "1" + "}" * 200])
@pytest.mark.parametrize("where", ["messages", "metadata", "body"])
def test_deep_json_to_serve_is_a_400(served: str, nested: str, where: str) -> None:
    if where == "body":
        body = nested
    else:
        messages = nested if where == "messages" else '[{"role": "user", "content": "q"}]'
        meta = f', "metadata": {nested}' if where == "metadata" else ""
        body = f'{{"model": "trio", "messages": {messages}{meta}}}'
    response = httpx.post(f"{served}/chat/completions", content=body.encode(),
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text[:200]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "nested" in error["message"]


# --- (c) numbers on the command line ------------------------------------------------------

HUGE = str(10**20)
UNBOUND = "203.0.113.1"  # TEST-NET-3: were a number taken, `serve` fails to bind at once


@pytest.mark.parametrize(("args", "option"), [
    (["logs", "list", "-n", HUGE], "-n"),
    (["eval", "--bench", "none.jsonl", "-s", "single", "--limit", HUGE], "--limit"),
    (["eval", "--bench", "none.jsonl", "-s", "single", "--seed", HUGE], "--seed"),
    (["eval", "--bench", "none.jsonl", "-s", "single", "--seed", "-1"], "--seed"),
    (["eval", "--bench", "none.jsonl", "-s", "single", "--concurrency", HUGE],
     "--concurrency"),
    (["batch", "none.txt", "-c", HUGE], "--concurrency"),
    (["ask", "q", "-m", "echo:", "--threads", HUGE], "--threads"),
    (["ask", "q", "-m", "echo:", "--ctx", HUGE], "--ctx"),
    (["arena", "--prompts", "none.jsonl", "--contestant", "single", "--contestant", "vote3",
      "--limit", HUGE], "--limit"),
    (["economy", "run", "-s", "single", "--bench", "none.jsonl", "-g", HUGE],
     "--generations"),
    (["economy", "run", "-s", "single", "--bench", "none.jsonl", "--seed", HUGE], "--seed"),
    (["contamination", "--bench", "none.jsonl", "--permutations", HUGE], "--permutations"),
    (["serve", "-s", "single", "--host", UNBOUND, "--max-queue", HUGE], "--max-queue"),
    (["serve", "-s", "single", "--host", UNBOUND, "--max-body", HUGE], "--max-body"),
    (["serve", "-s", "single", "--host", UNBOUND, "--threads", HUGE], "--threads"),
    (["toolformer", "annotate", "none.jsonl", "--tau-f", "nan"], "--tau-f"),
    (["star", "train", "none.jsonl", "--epochs", "nan"], "--epochs"),
    (["star", "mine", "--bench", "none.jsonl", "--seed", HUGE], "--seed"),
])
def test_a_number_no_engine_holds_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             args: list[str], option: str) -> None:
    monkeypatch.chdir(tmp_path)
    one_line_error(run(*args), f"option {option}")


# --- (d) judge prompts with format specs --------------------------------------------------


@pytest.mark.parametrize("template", [
    "{question:>99999} {answer_a} {answer_b}",
    "{question} {answer_a} {answer_b:x>99999}",
    "{question} {answer_a:{question}} {answer_b}",
    "{question} {answer_a} {answer_b:{answer_a}}",
    "{question!r} {answer_a} {answer_b}",
    "{question} {answer_a!s:^40} {answer_b}",
    "{question} {answer_a:} {answer_b:,}",
])
def test_a_judge_prompt_with_a_format_spec_is_refused_before_anyone_answers(
        tmp_path: Path, template: str) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"question_id": 1, "turns": ["Say hi"]}) + "\n")
    judge = tmp_path / "judge.jsonl"
    judge.write_text(json.dumps({"name": "pair-v2", "system_prompt": "Judge.",
                                 "prompt_template": template}) + "\n")
    out = tmp_path / "arena.jsonl"
    result = run("arena", "--prompts", str(prompts), "--contestant", "single",
                 "--contestant", "vote3", "-m", "echo:", "--judge-prompts", str(judge),
                 "-o", str(out), "--log", str(tmp_path / "log.db"))
    one_line_error(result, str(judge), "prompt_template", "format spec")
    assert not out.exists()  # no contestant answered
