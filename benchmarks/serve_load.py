"""Load test for `minsky serve`: the same requests all at once, then one at a time.

    minsky serve --society vote5 --parallel 16 --log /tmp/serve-load.db &   # under test
    python benchmarks/serve_load.py --model vote5 --log /tmp/serve-load.db [--requests 32]
    python benchmarks/serve_load.py --fake                   # check the script itself

`--out FILE` appends the report (the `--json` object) to a results file as one line.

Sends `--requests` chat completions (case i asks "what is i + i?") concurrently and then
the same ones sequentially, over plain httpx. Checks that nothing is lost or duplicated:
every request gets exactly one 200 with a run id no other response has; with `--log`
(the server's run log) every run id is in the log, finished, with the question that was
sent; with `--fake` the answers are checked too (the fake computes them). Reports wall
time, throughput (requests/s and completion tokens/s) and p50/p99 latency of both
passes, and the speed-up of the concurrent pass.

`--fake` starts a server in this process on minsky's fake backends (a 3-member vote
whose members answer after a fixed delay): it exercises the script and the server's
concurrency, not a model, and its figures say nothing about decoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchmarks_common import append_result


@dataclass
class Reply:
    case: int
    status: int
    latency_s: float
    run_id: str | None
    answer: str | None
    completion_tokens: int
    error: str | None = None


def question(case: int) -> str:
    return f"Case {case}: what is {case} + {case}?"


async def send(http: httpx.AsyncClient, url: str, model: str, case: int) -> Reply:
    body = {"model": model, "messages": [{"role": "user", "content": question(case)}]}
    start = time.perf_counter()
    try:
        resp = await http.post(f"{url}/chat/completions", json=body)
    except httpx.HTTPError as exc:
        return Reply(case, 0, time.perf_counter() - start, None, None, 0,
                     f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - start
    if resp.status_code != 200:
        return Reply(case, resp.status_code, latency, None, None, 0, resp.text[:200])
    data = resp.json()
    ext = data.get("minsky") or {}
    return Reply(case, 200, latency, ext.get("run_id"), data["choices"][0]["message"]["content"],
                 int(data["usage"]["completion_tokens"]))


async def one_pass(url: str, model: str, key: str | None, cases: list[int],
                   concurrent: bool, timeout_s: float) -> tuple[list[Reply], float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=len(cases) + 1)
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s, limits=limits) as http:
        start = time.perf_counter()
        if concurrent:
            replies = list(await asyncio.gather(*(send(http, url, model, c) for c in cases)))
        else:
            replies = [await send(http, url, model, c) for c in cases]
        return replies, time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (with 32 samples, p99 is the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def check(replies: list[Reply], cases: list[int], log: Path | None,
          expect_answers: bool) -> list[str]:
    """What went wrong: lost, failed, duplicated or crossed requests (empty: nothing)."""
    problems = []
    seen = sorted(r.case for r in replies)
    if seen != sorted(cases):
        problems.append(f"cases answered {seen} != cases sent {sorted(cases)}")
    problems += [f"case {r.case}: HTTP {r.status} {r.error}" for r in replies if r.status != 200]
    ids = [r.run_id for r in replies if r.status == 200]
    if None in ids or len(set(ids)) != len(ids):
        problems.append(f"run ids missing or duplicated: {ids}")
    if expect_answers:
        problems += [f"case {r.case}: answer {r.answer!r}, expected {2 * r.case}"
                     for r in replies if r.status == 200 and r.answer != str(2 * r.case)]
    if log is not None:
        from minsky.errors import MinskyError
        from minsky.runlog import RunLog

        db = RunLog.read_only(log)
        try:
            for r in replies:
                try:
                    run = db.get_run(r.run_id)
                except MinskyError:
                    problems.append(f"case {r.case}: run {r.run_id} is not in the log")
                    continue
                row = (run["question"], run["status"])
                if row[0] != question(r.case) or row[1] in ("running", "interrupted"):
                    problems.append(f"case {r.case}: run {r.run_id} logged as {row}")
        finally:
            db.close()
    return problems


def summary(replies: list[Reply], wall_s: float) -> dict[str, Any]:
    latencies = [r.latency_s for r in replies]
    tokens = sum(r.completion_tokens for r in replies)
    return {
        "requests": len(replies), "ok": sum(r.status == 200 for r in replies),
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(len(replies) / wall_s, 3),
        "completion_tokens_per_s": round(tokens / wall_s, 1),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p99_s": round(percentile(latencies, 99), 3),
        "latency_mean_s": round(statistics.fmean(latencies), 3),
    }


def fake_server(delay_s: float) -> tuple[Any, str, Path]:
    """A server in this process: a 3-member vote on a fake model that adds i + i."""
    from minsky.backends.fakes import FunctionBackend
    from minsky.backends.registry import Backends
    from minsky.messages import ChatRequest
    from minsky.runlog import RunLog
    from minsky.runner import Runner
    from minsky.serve.app import ServeSettings, create_app
    from minsky.serve.server import BackgroundServer
    from minsky.society import from_dict

    def add(request: ChatRequest) -> str:
        case = int(re.findall(r"Case (\d+)", request.messages[-1].content)[0])
        return f"Adding {case} and {case}. The answer is {2 * case}."

    society = from_dict({"name": "fake-vote3", "organisation": "vote", "model": "fake:add",
                         "agents": [{"name": "solver", "count": 3}]}, "serve_load --fake")
    log_path = Path(tempfile.mkdtemp(prefix="serve-load-")) / "logs.db"
    runner = Runner(Backends(overrides={"fake:add": FunctionBackend(add, delay_s)}),
                    RunLog(log_path))
    app = create_app({society.name: society}, runner, ServeSettings(max_concurrent=64))
    server = BackgroundServer(app).start()
    return server, server.base_url, log_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="vote5", help="the served society")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--log", type=Path, default=None,
                        help="the server's run log, to check every run landed in it")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per request, seconds")
    parser.add_argument("--fake", action="store_true",
                        help="serve a fake-backend society in this process (checks the script)")
    parser.add_argument("--fake-delay", type=float, default=0.2,
                        help="seconds each fake batch takes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=None,
                        help="append the report to this results file (one JSON line)")
    args = parser.parse_args()

    server = None
    url, model, log = args.base_url.rstrip("/"), args.model, args.log
    if args.fake:
        server, url, log = fake_server(args.fake_delay)
        model = "fake-vote3"
    try:
        cases = list(range(args.requests))
        together, wall_c = asyncio.run(one_pass(url, model, args.api_key, cases, True,
                                                args.timeout))
        alone, wall_s = asyncio.run(one_pass(url, model, args.api_key, cases, False,
                                             args.timeout))
    finally:
        if server is not None:
            server.stop()
    problems = check(together, cases, log, args.fake) + check(alone, cases, log, args.fake)
    ids = [r.run_id for r in together + alone]
    if len(set(ids)) != len(ids):
        problems.append("a run id was returned in both passes")
    result = {
        "model": model, "base_url": url, "fake": args.fake,
        "concurrent": summary(together, wall_c), "sequential": summary(alone, wall_s),
        "speedup": round(wall_s / wall_c, 2), "problems": problems,
    }
    if args.out is not None:
        append_result(args.out, {"requests": args.requests, **result})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{model} at {url}: {args.requests} requests")
        for name in ("concurrent", "sequential"):
            s = result[name]
            print(f"  {name:10} {s['ok']}/{s['requests']} ok  wall {s['wall_s']:.2f} s  "
                  f"{s['requests_per_s']:.2f} req/s  {s['completion_tokens_per_s']:.0f} tok/s  "
                  f"p50 {s['latency_p50_s']:.2f} s  p99 {s['latency_p99_s']:.2f} s")
        print(f"  speed-up of the concurrent pass: {result['speedup']}x")
        print("  none lost or duplicated" if not problems else "  PROBLEMS:\n    "
              + "\n    ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
