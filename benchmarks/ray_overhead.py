"""Benchmark: the same 20-case evaluation locally and over Ray on this machine.

    python benchmarks/ray_overhead.py                      # a fake (echo:0.2), for checking
    python benchmarks/ray_overhead.py --model qwen0.5b --society vote5 --threads 2

Runs `--society` on the first `--n` problems of the fixed GSM8K sample (seed 0) twice with
the same settings, at each `--concurrency`: once on a local `Runner`, once through
`ClusterRunner` on a private one-node Ray cluster (`--ray local`, one engine owning the
backend; or `--ray HOST:PORT`). Each run writes its own results file and run log, as
`minsky eval` does. Reports wall times, Ray's start-up (connect and engine start, paid
once per evaluation, whatever its size) and the per-case overhead: (Ray wall - local
wall) / cases, start-up excluded. It also checks that both runs gave the same answers.
`--out FILE` appends the report to a results file as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks_common import append_result, gsm8k_sample

from minsky.backends.registry import Backends
from minsky.cluster.pool import ClusterRunner, connect
from minsky.evals.harness import evaluate_society
from minsky.plugin_api import BackendSettings, Case
from minsky.results import read_rows
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load


async def _warm(runner: Runner, society_name: str, model: str) -> float:
    start = time.perf_counter()
    await runner.run(load(society_name, model), "What is 1 + 1?", "number")
    return time.perf_counter() - start


async def timed(runner: Runner, society_name: str, model: str, cases: list[Case],
                out: Path, concurrency: int) -> float:
    """Wall seconds of one evaluation, written as `minsky eval` writes it."""
    society = load(society_name, model)
    start = time.perf_counter()
    await evaluate_society(runner, society, cases, out, concurrency)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--society", default="single")
    ap.add_argument("--model", default="echo:0.2", help="default: a fake with a 0.2 s reply")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--concurrency", default="1,4",
                    help="cases in flight, comma-separated: one measurement each (at 1 the "
                         "overhead is not hidden behind other cases)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ray", default="local", help="local, auto or HOST:PORT")
    ap.add_argument("--out", type=Path, default=None,
                    help="append the report to this results file (one JSON line)")
    args = ap.parse_args()
    report = asyncio.run(measure(args))
    print(json.dumps(report, indent=2))
    if args.out is not None:
        append_result(args.out, report)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both runners, one event loop (an embedded backend stays bound to its loop)."""
    cases = [Case(str(i), q, gold, "number") for i, q, gold in gsm8k_sample(args.n, 0)]
    settings = BackendSettings(threads=args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="ray-overhead-"))

    start = time.perf_counter()
    connect(args.ray)
    cluster = ClusterRunner(settings, None, engines=1)
    startup_s = time.perf_counter() - start
    local = Runner(Backends(settings))
    # one warm-up case each, untimed: both load the model (on the engine's node for Ray)
    # before any measurement, and keep it for all of them
    warm = {name: round(await _warm(runner, args.society, args.model), 2)
            for name, runner in (("local", local), ("ray", cluster))}
    report = {"society": args.society, "model": args.model, "cases": len(cases),
              "ray_startup_s": round(startup_s, 2), "warm_up_s": warm, "files": str(tmp),
              "runs": []}
    for c in (int(x) for x in args.concurrency.split(",")):
        local.log = RunLog(tmp / f"local{c}.db")
        local_s = await timed(local, args.society, args.model, cases,
                              tmp / f"local{c}.jsonl", c)
        # the same engines for every measurement: start-up is paid once per evaluation
        cluster.log = RunLog(tmp / f"ray{c}.db")
        ray_s = await timed(cluster, args.society, args.model, cases,
                            tmp / f"ray{c}.jsonl", cluster.scale(c))
        answers = [{r["case"]: r["answer"] for r in read_rows(tmp / f"{name}{c}.jsonl")}
                   for name in ("local", "ray")]
        report["runs"].append({
            "concurrency": c, "local_wall_s": round(local_s, 2), "ray_wall_s": round(ray_s, 2),
            "local_per_case_s": round(local_s / len(cases), 3),
            "overhead_per_case_ms": round(1000 * (ray_s - local_s) / len(cases), 1),
            "same_answers": answers[0] == answers[1]})
    await local.backends.aclose()
    return report


if __name__ == "__main__":
    main()
