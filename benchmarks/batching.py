"""Benchmark: one 5-member `vote` round batched vs the same 5 requests one after another.

    python benchmarks/batching.py [--model qwen0.5b] [--threads 2] [--repeats 3] \
        [--out benchmarks/results/batching.jsonl]

Builds the exact requests the `vote5` society sends for a fixed GSM8K-style question
(temperature 0.7, seeds 0..4), then times (a) one `complete` call with all five, decoded
as parallel sequences, and (b) five `complete` calls in a row. Both run on one fresh
backend after a warm-up, alternating, so neither has a warmer cache. Prints a Markdown
table and a JSON line; `--out FILE` also appends that line to a results file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks_common import append_result

from minsky.backends.registry import Backends
from minsky.messages import ChatRequest
from minsky.organisations.answering import solve_messages
from minsky.organisations.base import Task
from minsky.society import load

QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None,
                    help="append the JSON line to this results file")
    args = ap.parse_args()

    from minsky.plugin_api import BackendSettings

    society = load("vote5", args.model)
    backend = Backends(BackendSettings(threads=args.threads)).get(args.model)
    members = society.members({args.model: True})
    task = Task(QUESTION, "number")
    requests = [
        ChatRequest(solve_messages(m, task), m.options) for m in members
    ]
    await backend.complete(requests[:1])  # load the model, warm the caches

    batched, serial, tokens_b, tokens_s = [], [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        replies = await backend.complete(requests)
        batched.append(time.perf_counter() - t)
        tokens_b.append(sum(r.usage.completion_tokens for r in replies))
        t = time.perf_counter()
        replies = [(await backend.complete([r]))[0] for r in requests]
        serial.append(time.perf_counter() - t)
        tokens_s.append(sum(r.usage.completion_tokens for r in replies))
    await backend.aclose()

    b, s = statistics.median(batched), statistics.median(serial)
    result = {
        "model": args.model,
        "threads": args.threads,
        "repeats": args.repeats,
        "batched_s": round(b, 2),
        "serial_s": round(s, 2),
        "speedup": round(s / b, 2),
        "batched_tok_per_s": round(statistics.median(tokens_b) / b, 1),
        "serial_tok_per_s": round(statistics.median(tokens_s) / s, 1),
        # the two modes' replies differ slightly (batch layout changes floating-point
        # order), so each mode's own tokens are kept
        "completion_tokens_batched": tokens_b[-1],
        "completion_tokens_serial": tokens_s[-1],
    }
    print("| mode | wall (s, median) | completion tok/s |")
    print("|---|---|---|")
    print(f"| 5 requests, one batch | {b:.2f} | {result['batched_tok_per_s']} |")
    print(f"| 5 requests, one after another | {s:.2f} | {result['serial_tok_per_s']} |")
    print(f"\nspeedup: {s / b:.2f}x")
    print(json.dumps(result))
    if args.out is not None:
        append_result(args.out, result)


if __name__ == "__main__":
    asyncio.run(main())
