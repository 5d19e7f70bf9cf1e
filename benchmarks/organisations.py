"""Benchmark: societies on a fixed sample of a math benchmark — accuracy, tokens, time.

    python benchmarks/organisations.py --n 50 --seed 0 \
        --societies single,vote5,debate,mixture,monarchy,democracy
    python benchmarks/organisations.py --bench mawps --n 100 --seed 0 \
        --societies single,calc,vote5,vote5-calc --out benchmarks/results/mawps100.jsonl

The sample is `random.Random(seed).sample(range(7473), n)` over the lines of
`../shared/data/gsm8k/train.jsonl`, sorted (the indices are printed and stored with each
row). Every society answers every problem with `--concurrency` problems in flight at
once; one JSON line per finished case is appended to `--out`, so rerunning the same
command resumes and skips finished cases. Wall time is the time a society had problems
in flight: the union of its finished runs' intervals (a run id is a ULID, which records
when the run started; the row has its duration: `minsky.evaluate.busy_seconds`), so a
segment that was killed and resumed counts up to its last finished case. Everything
runs on one CPU model process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from benchmarks_common import BENCHES, sample

from minsky.answers import answers_match
from minsky.evaluate import busy_seconds
from minsky.plugins import BackendSettings
from minsky.runlog import RunLog
from minsky.runner import Backends, Runner
from minsky.society import load
from minsky.stats import mcnemar, wilson_interval


def done_rows(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


async def run_society(name: str, cases, runner: Runner, out: Path, concurrency: int,
                      label: str | None = None) -> None:
    """Run society `name` on the cases not yet in `out`, appending a row per finished case;
    rows are filed under `label` (default: the name), so one society can run as variants."""
    label = label or name
    finished = {r["index"] for r in done_rows(out) if r.get("society") == label and "index" in r}
    todo = [c for c in cases if c[0] not in finished]
    if not todo:
        return
    society = load(name, runner_model)
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def one(case) -> None:
        index, question, gold = case
        async with gate:
            result = await runner.run(society, question, "number")
        row = {
            "society": label, "index": index, "gold": gold, "answer": result.answer,
            "correct": answers_match(result.answer, gold, "number"),
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "cached_tokens": result.usage.cached_tokens,
            "wall_s": round(result.wall_s, 2), "status": result.status,
            "run_id": result.run_id,
        }
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{label} #{index}: {result.answer} (gold {gold}) {result.wall_s:.1f}s", flush=True)

    await asyncio.gather(*(one(c) for c in todo))
    print(f"{label}: {len(todo)} cases in {time.perf_counter() - start:.0f}s", flush=True)


def table(out: Path, names: list[str], n: int, versus: str | None = None) -> str:
    """The Markdown table of --out; the last column pairs each society with `versus`
    (default: the first) on the problems both finished: problems only it solved, problems
    only `versus` solved, and the exact McNemar p."""
    rows = [r for r in done_rows(out) if "index" in r]
    versus = versus or names[0]
    base = {r["index"]: r["correct"] for r in rows if r["society"] == versus}
    lines = ["| society | solved | accuracy (95 % Wilson CI) | prompt tokens | "
             "completion tokens | tokens / problem | wall (s) | s / problem | "
             f"vs {versus}: only this / only {versus} (McNemar p) |", "|---" * 9 + "|"]
    for name in names:
        cases = [r for r in rows if r["society"] == name]
        if not cases:
            continue
        wall = busy_seconds(cases)
        k = len(cases)
        right = sum(r["correct"] for r in cases)
        p = sum(r["prompt_tokens"] for r in cases)
        c = sum(r["completion_tokens"] for r in cases)
        low, high = wilson_interval(right, k)
        both = [r for r in cases if r["index"] in base]
        paired = "—"
        if name != versus and both:
            test = mcnemar([base[r["index"]] for r in both], [r["correct"] for r in both])
            paired = f"{test.b01} / {test.b10} ({test.p_value:.2g})"
        lines.append(f"| {name} | {right}/{k}{'' if k == n else ' (partial)'} | "
                     f"{right / k:.0%} ({low:.0%}–{high:.0%}) | {p} | {c} | "
                     f"{(p + c) / k:.0f} | {wall:.0f} | {wall / k:.1f} | {paired} |")
    return "\n".join(lines)


runner_model: str | None = None


async def main() -> None:
    global runner_model
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", choices=sorted(BENCHES), default="gsm8k")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--societies", default="single,vote5,debate,mixture,monarchy,democracy")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gsm8k50.jsonl"))
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    ap.add_argument("--versus", default=None,
                    help="the society the paired column compares with (default: the first)")
    args = ap.parse_args()
    if args.table:
        print(table(args.out, args.societies.split(","), args.n, args.versus))
        return
    runner_model = args.model
    cases = sample(args.bench, args.n, args.seed)
    print("sample indices:", [c[0] for c in cases], flush=True)
    names = args.societies.split(",")
    settings = BackendSettings(threads=args.threads, parallel=args.parallel, n_ctx=32768)
    runner = Runner(Backends(settings), RunLog())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            await run_society(name, cases, runner, args.out, args.concurrency)
    finally:
        await runner.backends.aclose()
    print(table(args.out, names, args.n, args.versus))


if __name__ == "__main__":
    asyncio.run(main())
