"""Benchmark: what tracing (`minsky.otel`) adds to a run, on the scripted fakes.

    python benchmarks/otel_overhead.py                 # 200 runs of a 5-member vote: 1,000 calls

Runs a vote of `--members` members on a scripted fake `--runs` times, one run after the
other, with no run log, so the runner and its observers are all that is measured:

- off: a runner made with tracing off (no extra imported, no observer);
- no endpoint: `minsky.otel.start()` with no OTLP endpoint set, then a runner, as every
  command does when the extra is installed but not configured;
- on, spans dropped: the trace observer on a provider whose batch processor hands spans
  to an exporter that drops them (the cost of making spans);
- on, OTLP/HTTP: the observer on the provider `--otel` sets up, sending to a minimal
  OTLP/HTTP receiver on 127.0.0.1 (the export happens on the SDK's background thread;
  the flush at the end is timed apart).

Each configuration is timed `--repeat` times, interleaved; the table gives the median
wall time, the time per call and the overhead per call against "off".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from minsky import otel
from minsky.backends.fakes import ScriptedBackend
from minsky.backends.registry import Backends
from minsky.runner import Runner
from minsky.society import Society, from_dict

Q = "What is 6*7?"


def society(members: int) -> Society:
    return from_dict({"name": "bench", "organisation": "vote", "model": "fake:a",
                      "agents": [{"name": "solver", "count": members,
                                  "role": "You are a careful problem solver."}]}, "bench.toml")


async def timed(make: Callable[[], Runner], soc: Society, runs: int) -> float:
    runner = make()
    start = time.perf_counter()
    for _ in range(runs):
        result = await runner.run(soc, Q)
        assert result.status == "ok", result.status
    return time.perf_counter() - start


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    for name in (*otel.ENDPOINTS, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        os.environ.pop(name, None)

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from minsky.otel.export import otlp_provider
    from minsky.otel.observer import TraceObserver

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_address[1]}"
    dropped = TracerProvider()
    dropped.add_span_processor(BatchSpanProcessor(Dropped()))
    sent = otlp_provider()
    del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]

    soc = society(args.members)
    replies = ["42"] * (args.members * args.runs * (args.repeat + 1))

    def backends() -> Backends:
        return Backends(overrides={"fake:a": ScriptedBackend(replies)})

    def no_endpoint() -> Runner:
        otel.start()  # no endpoint, no flag: stays off
        return Runner(backends())

    configs: dict[str, Callable[[], Runner]] = {
        "off": lambda: Runner(backends()),
        "no endpoint": no_endpoint,
        "on, spans dropped": lambda: Runner(
            backends(), observers=[TraceObserver(dropped.get_tracer("bench"))]),
        "on, OTLP/HTTP": lambda: Runner(
            backends(), observers=[TraceObserver(sent.get_tracer("bench"))]),
    }
    for make in configs.values():  # warm: imports, first spans
        asyncio.run(timed(make, soc, 5))
    walls: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeat):
        for name, make in configs.items():
            walls[name].append(asyncio.run(timed(make, soc, args.runs)))
    start = time.perf_counter()
    sent.force_flush()
    flush = time.perf_counter() - start
    sent.shutdown()
    dropped.shutdown()
    sink.shutdown()

    calls = args.runs * args.members
    base = statistics.median(walls["off"])
    print(f"{args.runs} runs × {args.members} members = {calls} calls; median of "
          f"{args.repeat}\n")
    print(f"| {'tracing':<18} | {'wall s':>7} | {'µs / call':>9} | {'overhead µs / call':>18} |")
    print(f"|{'-' * 20}|{'-' * 8}:|{'-' * 10}:|{'-' * 19}:|")
    for name, times in walls.items():
        wall = statistics.median(times)
        print(f"| {name:<18} | {wall:>7.3f} | {wall / calls * 1e6:>9.1f} | "
              f"{(wall - base) / calls * 1e6:>+18.1f} |")
    print(f"\nflush of the OTLP/HTTP batches left at the end: {flush * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
