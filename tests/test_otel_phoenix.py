"""End to end with a tracing tool teams already run: Arize Phoenix, started by the test on
127.0.0.1, receives `minsky ask --otel`'s trace over OTLP/HTTP and hands the spans back
through its own REST API. The members run on the `echo:` fake.

Phoenix pulls in a web server, a database layer and a hundred packages that minsky does
not need, so it lives in a virtualenv of its own, which `scripts/test` makes and names in
`MINSKY_PHOENIX` (the `phoenix` executable). Without it, as under a bare `pytest`, this
test cannot start its receiver and is skipped, saying how to get one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

PHOENIX = os.environ.get("MINSKY_PHOENIX", "")
pytestmark = pytest.mark.skipif(
    not Path(PHOENIX).is_file(),
    reason="no Phoenix receiver: run scripts/test, which installs it and sets MINSKY_PHOENIX")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a fresh Phoenix server with its own working folder."""
    port = free_port()
    work = tmp_path_factory.mktemp("phoenix")
    env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_WORKING_DIR": str(work),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = (work / "phoenix.log").open("wb")
    proc = subprocess.Popen([PHOENIX, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # its first start builds its database
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Phoenix did not start: "
                            + (work / "phoenix.log").read_text(errors="replace")[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def flat(attrs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Attributes with dotted keys, whether Phoenix nests them or not."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, dict):
            out |= flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def spans_of(url: str, count: int) -> list[dict[str, Any]]:
    """The default project's spans, once `count` have arrived (or after 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        got = httpx.get(f"{url}/v1/projects/default/spans", params={"limit": 1000},
                        timeout=10)
        got.raise_for_status()
        spans = got.json()["data"]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


def test_a_run_is_a_trace_in_phoenix(phoenix: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix, "OTEL_SERVICE_NAME": "e2e"}
    out = subprocess.run(
        [sys.executable, "-m", "minsky", "ask", "What is 2+2?", "--society", "vote3",
         "-m", "echo:x", "--log", str(tmp_path / "runs.db"), "--otel", "--json"],
        capture_output=True, text=True, env=env, timeout=180, check=False)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]

    spans = spans_of(phoenix, 5)  # the run, its round, three member calls
    by_id = {s["context"]["span_id"]: s for s in spans}
    names = sorted(s["name"] for s in spans)
    assert names == ["chat x", "chat x", "chat x", "invoke_agent vote3", "round answer"]
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    (run,) = [s for s in spans if not s.get("parent_id")]
    assert flat(run["attributes"])["minsky.run_id"] == run_id
    assert flat(run["attributes"])["minsky.status"] == "ok"
    (rnd,) = [s for s in spans if s["name"] == "round answer"]
    assert by_id[rnd["parent_id"]] is run
    calls = [s for s in spans if s["name"] == "chat x"]
    for call in calls:
        assert by_id[call["parent_id"]] is rnd
        attrs = flat(call["attributes"])
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.input.messages" not in attrs  # no content unless asked for
