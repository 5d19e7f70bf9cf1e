"""Benchmark: which worked example teaches the 0.5B model to use the Calculator, chosen on
held-out problems.

    python benchmarks/calc_demo.py --n 30 --threads 2

The Calculator shows the model one worked exchange (`Tool.demo`) before the task. This
runs the `calc` society once per demo variant below, and `single` as the reference, on
`--n` GSM8K train problems and `--n` MAWPS problems drawn with `--seed` from those NOT in
the fixed seed-0 100-problem samples that docs/benchmarks.md reports on, so the demo is
not chosen on the problems it is then measured on. One JSON line per finished case goes
to `--out` (rerunning resumes); the summary gives, per bench and variant, problems solved
and how many answers called the tool (from the run log).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from benchmarks_common import GSM8K, MAWPS, run_log, sample, tool_calls

import minsky.tools.calculator as calculator
from minsky.backends.registry import Backends
from minsky.evals.benchmarks import load_benchmark
from minsky.evals.harness import evaluate_society
from minsky.plugin_api import BackendSettings
from minsky.results import read_rows
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load

BENCHES = {"gsm8k": GSM8K, "mawps": MAWPS}

# The demo minsky shipped first: two short steps and the answer. Small models copied its
# shape, stopping after one call (the docs' calculator section has examples).
TERSE = (
    "Tom buys 3 boxes of 12 eggs and breaks 7. How many eggs are left?",
    "He has 3 boxes of 12 eggs: [Calculator(3*12)->36] 36 eggs. After breaking 7 "
    "he has [Calculator(36-7)->29] 29 eggs left.\nThe answer is 29.",
)
# "steps": the demo minsky ships now (numbered steps, one call each).
DEMOS = {"terse": TERSE, "steps": calculator.CALCULATOR.demo}


def summary(out: Path, labels: list[str]) -> str:
    log = run_log()
    rows = read_rows(out)
    lines = ["| bench | variant | solved | answers that called the tool |", "|---|---|---|---|"]
    for bench in sorted({r["society"].split("/")[0] for r in rows}):
        for label in labels:
            mine = [r for r in rows if r["society"] == f"{bench}/{label}"]
            if not mine:
                continue
            called = sum(tool_calls(log, r["run_id"])[0] > 0 for r in mine)
            solved = sum(r["correct"] for r in mine)
            lines.append(f"| {bench} | {label} | {solved}/{len(mine)} | {called} |")
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", default="single," + ",".join(DEMOS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/calc-demo.jsonl"))
    args = ap.parse_args()
    labels = args.variants.split(",")
    settings = BackendSettings(threads=args.threads, parallel=16, n_ctx=32768)
    runner = Runner(Backends(settings), RunLog())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shipped = calculator.CALCULATOR
    try:
        for bench in ("gsm8k", "mawps"):
            test = {c[0] for c in sample(bench, 100, 0)}
            every = load_benchmark(BENCHES[bench])  # the same problems, as eval's Cases
            cases = [every[i] for i, _, _ in sample(bench, args.n, args.seed, exclude=test)]
            for label in labels:
                society = "single" if label == "single" else "calc"
                if label != "single":
                    # the built-in Calculator plugin hands out this module attribute for
                    # each run, so replacing it swaps the demo the run shows the model
                    calculator.CALCULATOR = dataclasses.replace(shipped, demo=DEMOS[label])
                soc = load(society)
                soc = dataclasses.replace(soc, config=soc.config.model_copy(
                    update={"name": f"{bench}/{label}"}))
                await evaluate_society(runner, soc, cases, args.out, args.concurrency)
    finally:
        calculator.CALCULATOR = shipped
        await runner.backends.aclose()
    print(summary(args.out, labels))


if __name__ == "__main__":
    asyncio.run(main())
