"""End to end: `minsky ask --otel` in a process of its own sends its run's trace over
OTLP/HTTP to a real receiver on 127.0.0.1, which decodes what arrives with the OTLP
protobuf classes (`opentelemetry-proto`, which the exporter brings); then `minsky logs
export --otlp` sends the logged run again. The members run on the `echo:` fake."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

Q = "What is 2+2?"


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf, as a collector takes it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[dict[str, Any]]:
        """Every span received: service, name, ids and attributes as plain values."""
        out = []
        with self.lock:
            requests = list(self.requests)
        for req in requests:
            for rs in req.resource_spans:
                service = _attrs(rs.resource.attributes).get("service.name")
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append({"service": service, "name": s.name,
                                    "trace": s.trace_id.hex(), "id": s.span_id.hex(),
                                    "parent": s.parent_span_id.hex() or None,
                                    "attrs": _attrs(s.attributes),
                                    "start": s.start_time_unix_nano,
                                    "end": s.end_time_unix_nano})
        return out


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces" or "protobuf" not in self.headers.get("Content-Type", ""):
            self.send_error(404)
            return
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with self.server.lock:
            self.server.requests.append(req)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def minsky(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minsky", *args], capture_output=True,
                          text=True, env=env, timeout=180, check=False)


def tree(spans: list[dict[str, Any]]) -> list[Any]:
    kids: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        kids.setdefault(s["parent"], []).append(s)

    def node(s: dict[str, Any]) -> list[Any]:
        below = sorted(kids.get(s["id"], []), key=lambda c: (c["start"], c["name"]))
        return [s["name"], [node(c) for c in below]] if below else [s["name"]]

    return [node(s) for s in kids.get(None, [])]


def wait_for(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(spans := receiver.spans()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return spans


EXPECTED = [["invoke_agent vote3", [
    ["round answer", [["chat x"], ["chat x"], ["chat x"]]]]]]


def test_a_run_reaches_a_real_otlp_receiver(receiver: Receiver, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "e2e"}
    log = tmp_path / "runs.db"
    out = minsky("ask", Q, "--society", "vote3", "-m", "echo:x", "--log", str(log), "--otel",
                 "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)

    # the exporter sent everything before the process ended: nothing to wait for
    spans = receiver.spans()
    assert tree(spans) == EXPECTED
    assert {s["service"] for s in spans} == {"e2e"}
    assert len({s["trace"] for s in spans}) == 1
    (run,) = [s for s in spans if s["parent"] is None]
    assert run["attrs"]["minsky.run_id"] == result["run_id"]
    assert run["attrs"]["minsky.status"] == "ok"
    assert run["attrs"]["minsky.organisation"] == "vote"
    call = next(s for s in spans if s["name"] == "chat x")
    assert call["attrs"]["gen_ai.operation.name"] == "chat"
    assert call["attrs"]["gen_ai.provider.name"] == "echo"
    assert call["attrs"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert call["attrs"]["gen_ai.usage.output_tokens"] > 0
    assert "gen_ai.input.messages" not in call["attrs"]

    # the same run again, from the log, after the fact: a second trace of the same shape
    out = minsky("logs", "export", result["run_id"], "--otlp", "--log", str(log), env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"run_id": result["run_id"], "runs": 1}
    again = [s for s in wait_for(receiver, 2 * len(spans)) if s["trace"] != run["trace"]]
    assert tree(again) == EXPECTED
