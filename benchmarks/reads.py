"""Benchmark reads: the figures docs/benchmarks.md derives from saved results files.

    python benchmarks/reads.py greedy     # same greedy society, two runs: same answers?
    python benchmarks/reads.py tool-use   # calc vs single, split by whether calc called a tool
    python benchmarks/reads.py arena      # answer lengths per contestant
    python benchmarks/reads.py gains      # annotation: candidates' gains against thresholds

Nothing here runs a model. `tool-use` reads the run log (`$MINSKY_HOME/logs.db`) of the
machine that ran the evaluation.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
from pathlib import Path

from minsky.paths import home_dir

RESULTS = Path(__file__).resolve().parent / "results"


def rows(name: str) -> list[dict]:
    return [json.loads(x) for x in (RESULTS / name).read_text().splitlines() if x.strip()]


def greedy() -> None:
    # eval case ids are 1-based line numbers; organisations.py indices are 0-based
    ev = {int(r["case"].split(":")[1]) - 1: r for r in rows("eval-gsm8k100.jsonl")
          if r["society"] == "single"}
    org = [r for r in rows("gsm8k50.jsonl") if r.get("society") == "single" and "index" in r]
    same = sum(ev[r["index"]]["answer"] == r["answer"] for r in org)
    print(f"single on {len(org)} shared problems: same final answer {same}; correct "
          f"{sum(ev[r['index']]['correct'] for r in org)} (eval) vs "
          f"{sum(r['correct'] for r in org)} (organisations)")


def tool_use() -> None:
    log = sqlite3.connect(f"file:{home_dir() / 'logs.db'}?mode=ro", uri=True)
    evals = rows("eval-gsm8k100.jsonl")
    single = {r["case"]: r["correct"] for r in evals if r["society"] == "single"}
    split: dict[bool, list[tuple[bool, bool]]] = {True: [], False: []}
    calls = 0
    for r in (r for r in evals if r["society"] == "calc"):
        n = log.execute("select count(*) from tool_calls where run_id = ?",
                        (r["run_id"],)).fetchone()[0]
        calls += n
        split[n > 0].append((r["correct"], single[r["case"]]))
    for used, pairs in split.items():
        print(f"{'called a tool' if used else 'no call'}: {len(pairs)} cases, calc solved "
              f"{sum(a for a, _ in pairs)}, single solved {sum(b for _, b in pairs)}")
    print(f"tool calls in all: {calls}")


def arena() -> None:
    answers = [r for r in rows("arena-mtbench10.jsonl") if r["kind"] == "answer"]
    for name in sorted({r["contestant"] for r in answers}):
        mine = [r for r in answers if r["contestant"] == name]
        print(f"{name}: mean answer length {statistics.mean(len(r['text']) for r in mine):.0f} "
              f"characters, {sum(r['tokens'] for r in mine)} tokens")


def gains() -> None:
    every = [g for r in rows("toolformer-gsm8k200.jsonl") for g in r["gains"]]
    for t in (0.0, 0.25, 0.5, 1.0):
        print(f"gain > {t}: {sum(g > t for g in every)} of {len(every)} candidates")


if __name__ == "__main__":
    reads = {"greedy": greedy, "tool-use": tool_use, "arena": arena, "gains": gains}
    if len(sys.argv) != 2 or sys.argv[1] not in reads:
        sys.exit(f"usage: python benchmarks/reads.py {{{'|'.join(reads)}}}")
    reads[sys.argv[1]]()
