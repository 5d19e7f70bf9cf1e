"""Benchmark `minsky view`: page load times over HTTP with 10,000 runs in the log.

    python benchmarks/view_load.py [--runs 10000] [--repeat 20] [--json]

Fills a temporary run log through minsky's own RunLog API (no model: each run is a
3-member vote round and a decision, one run in ten with a nested sub-society run), writes
an evaluation results file over 1,000 of those runs (3 societies × 1,000 cases, pointing at
them), starts `python -m minsky view` on it, and times full page loads with http.client:
the runs list (first page, a deep page, a society filter, a text search), a run page, a
nested run page and the evaluation page (its 100-case matrix page). Each page is fetched
once cold, then `--repeat` times; the figures are the median and the worst of those.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ulid import ULID

from minsky.messages import ChatReply, ChatRequest, Message, Options, Usage
from minsky.runlog import RunLog

SOCIETIES = ["vote3", "debate", "contest"]


def fill(path: Path, runs: int) -> list[str]:
    """`runs` finished runs (plus their sub-society runs), logged as the Runner logs them."""
    log = RunLog(path)
    # the benchmark's own throwaway file: no need to wait for the disk on every commit
    log.unsynced()
    ids = []
    for i in range(runs):
        run_id = str(ULID())
        society = SOCIETIES[i % len(SOCIETIES)]
        question = f"Case {i}: what is {i}+{i}? Show your working."
        log.start_run(run_id, society, {"name": society, "agents": [
            {"name": "solver", "count": 3}]}, question, "number", {"solver": "fake"})
        log.start_round(run_id, 1, "answer")
        for m in range(3):
            request = ChatRequest([Message("system", "You are a careful solver."),
                                   Message("user", question)], Options(max_tokens=256))
            reply = ChatReply(f"Adding {i} and {i} gives {2 * i}. The answer is {2 * i}.",
                              Usage(40, 18), 0.5, "stop")
            log.log_call(run_id, 1, m, f"solver-{m + 1}", "fake", "answer", "fake",
                         request, reply)
        if i % 10 == 0:
            # a sub-society member: a run of its own, folded into its parent's call
            child = str(ULID())
            log.start_run(child, "team", {"name": "team"}, question, "number", {},
                          parent_id=run_id)
            log.start_round(child, 1, "answer")
            for m in range(2):
                log.log_call(child, 1, m, f"member-{m + 1}", "fake", "answer", "fake",
                             request, reply)
            log.finish_run(child, "ok", str(2 * i), {}, Usage(80, 36), 0.4)
            log.log_call(run_id, 1, 3, "team", "society:team", "answer",
                         f"society:team run {child}", request, reply, child=child)
        log.finish_run(run_id, "ok", str(2 * i),
                       {"answer": str(2 * i), "members": [],
                        "tally": {"counts": {str(2 * i): 3}}}, Usage(120, 54), 1.5)
        ids.append(run_id)
    log.close()
    return ids


def eval_file(path: Path, ids: list[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for n, run_id in enumerate(ids[:3000]):
            case, society = n // 3, ["single", "vote3", "vote9"][n % 3]
            f.write(json.dumps({
                "case": f"c{case}", "society": society, "answer": str(2 * case),
                "gold": str(2 * case), "correct": (case + n % 3) % 3 != 0,
                "prompt_tokens": 120 * (1 + n % 3), "completion_tokens": 54,
                "calls": 1 + 2 * (n % 3), "wall_s": 1.5, "status": "ok", "run_id": run_id,
            }) + "\n")


def serve(log: Path, results: Path) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "minsky", "view", "--log", str(log),
                             "--results", str(results), "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or []],
                     daemon=True).start()
    line = lines.get(timeout=60)
    host, port = line.split("http://")[1].split("/")[0].rsplit(":", 1)
    return proc, host, int(port)


def load(host: str, port: int, path: str) -> tuple[float, int, int]:
    """Seconds to fetch one page completely, its status and its size."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path)
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return time.perf_counter() - start, reply.status, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, results = Path(tmp) / "logs.db", Path(tmp) / "eval.jsonl"
        start = time.perf_counter()
        ids = fill(log, args.runs)
        filled = time.perf_counter() - start
        eval_file(results, ids)
        nested = ids[-1 - ((len(ids) - 1) % 10)]  # a run with a sub-society run
        pages = {
            "runs, first page": "/",
            "runs, page 100": "/?page=100",
            "runs, one society": "/?society=debate",
            "runs, text search": "/?q=Case+9999",
            "one run": f"/run/{ids[len(ids) // 2 + 1]}",
            "a nested run": f"/run/{nested}",
            "evaluation (1,000 cases)": "/results/1",
        }
        proc, host, port = serve(log, results)
        rows = []
        try:
            for name, path in pages.items():
                cold, status, size = load(host, port, path)
                if status != 200:
                    raise SystemExit(f"{path}: HTTP {status}")
                times = [load(host, port, path)[0] for _ in range(args.repeat)]
                rows.append({"page": name, "path": path, "bytes": size, "cold_s": cold,
                             "median_s": statistics.median(times), "max_s": max(times)})
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps({"runs": args.runs, "fill_s": filled, "pages": rows}, indent=2))
        return
    print(f"{args.runs} runs logged in {filled:.1f} s; {args.repeat} loads per page")
    print(f"{'page':<26} {'KB':>6} {'cold ms':>8} {'median ms':>10} {'max ms':>8}")
    for r in rows:
        print(f"{r['page']:<26} {r['bytes'] / 1024:6.1f} {1000 * r['cold_s']:8.1f} "
              f"{1000 * r['median_s']:10.1f} {1000 * r['max_s']:8.1f}")


if __name__ == "__main__":
    main()
