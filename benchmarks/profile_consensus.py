"""Where the default society's seconds per GSM8K problem go (issue 27, item 5).

    python benchmarks/profile_consensus.py [--n 16] [--society consensus] [--concurrency 4]

Runs `--society` on the first `--n` problems of the seed-0 GSM8K-train sample, four in
flight as `minsky eval` runs them, with a fresh run log, and times every stage from
inside: llama.cpp's `llama_decode` (batches that carry prompt tokens apart from those
that only generate), sampling and the engine's bookkeeping around it, admitting requests
(chat template, tokenizer, prefix-cache planning), the interpreter running programs,
the vote, and the run log's writes. What is left of the wall time is the engine waiting
for work: the organisations' turns, the event loop, and gaps between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from minsky.backends import llama
from minsky.backends.registry import Backends
from minsky.evals.benchmarks import load_benchmark
from minsky.evals.formats import score
from minsky.models import default_model
from minsky.organisations import consensus
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
SPENT: dict[str, float] = defaultdict(float)
COUNT: dict[str, int] = defaultdict(int)
TOKENS: dict[str, int] = defaultdict(int)
LOCK = threading.Lock()


def timed(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            with LOCK:
                SPENT[name] += time.perf_counter() - start
                COUNT[name] += 1
    return wrapper


def instrument() -> None:
    engine = llama._Engine
    original_decode = engine.decode

    def decode(self: Any, batch: Any) -> int:
        n = batch.n_tokens
        sampled = sum(1 for i in range(n) if batch.logits[i])
        kind = "decode: batches with prompt tokens" if n > sampled else "decode: generation only"
        start = time.perf_counter()
        try:
            return original_decode(self, batch)
        finally:
            with LOCK:
                SPENT[kind] += time.perf_counter() - start
                COUNT[kind] += 1
                TOKENS[f"{kind} (tokens)"] += n
                TOKENS["sampled tokens"] += sampled

    engine.decode = decode
    engine._step = timed("engine step (all)", engine._step)
    engine._admit = timed("admit: template, tokenize, cache plan", engine._admit)
    consensus.run_program_guarded = timed("interpreter (programs)",
                                          consensus.run_program_guarded)
    consensus._decide = timed("vote (decide)", consensus._decide)
    for name in ("start_run", "start_round", "log_call", "event", "finish_run",
                 "log_tool_calls"):
        setattr(RunLog, name, timed("run log writes", getattr(RunLog, name)))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--society", default="consensus")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=16, help="sequences decoded in one batch")
    ap.add_argument("--n-ctx", type=int, default=None,
                    help="KV cache tokens, all sequences (default 16384, or 1024 per slot "
                         "beyond 16 slots, so more slots do not fill it)")
    ap.add_argument("--out", type=Path, help="append the profile as one JSON line")
    args = ap.parse_args()
    instrument()
    cases = load_benchmark(GSM8K, 200, 0)[: args.n]
    society = load(args.society)
    with tempfile.TemporaryDirectory() as tmp:
        log = RunLog(Path(tmp) / "logs.db")
        n_ctx = args.n_ctx or max(16384, 1024 * args.parallel)
        settings = BackendSettings(threads=args.threads, parallel=args.parallel, n_ctx=n_ctx)
        runner = Runner(Backends(settings), log=log)
        gate = asyncio.Semaphore(args.concurrency)
        usage = defaultdict(int)

        async def one(case: Any) -> None:
            async with gate:
                r = await runner.run(society, case.question, case.kind)
                usage["prompt"] += r.usage.prompt_tokens
                usage["cached"] += r.usage.cached_tokens
                usage["completion"] += r.usage.completion_tokens
                usage["right"] += int(score(case, r.answer))

        # load the model before the clock starts, as a warm `minsky eval` would have it
        await runner.backends.get(society.agents[0].model or default_model()).complete([])
        start = time.perf_counter()
        async with runner:
            await asyncio.gather(*(one(c) for c in cases))
        wall = time.perf_counter() - start
    step = SPENT.pop("engine step (all)")
    decoding = sum(v for k, v in SPENT.items() if k.startswith("decode:"))
    SPENT["sampling and bookkeeping in the engine step"] = step - decoding
    busy = step + SPENT["admit: template, tokenize, cache plan"]
    SPENT["engine idle (waiting for the organisations, event loop, gaps)"] = wall - busy
    n = len(cases)
    print(f"{args.society}: {n} problems, {args.concurrency} in flight ({args.parallel} slots), "
          f"{wall:.1f} s wall, "
          f"{wall / n:.2f} s per problem; tokens per problem: prompt {usage['prompt'] / n:.0f} "
          f"(reused {usage['cached'] / n:.0f}), completion {usage['completion'] / n:.0f}; "
          f"solved {usage['right']}")
    print("| stage | s per problem | share of wall | calls |")
    print("|---|---|---|---|")
    for k, v in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v / n:.2f} | {v / wall:.0%} | {COUNT.get(k, '')} |")
    for k, v in TOKENS.items():
        print(f"{k}: {v / n:.0f} per problem")
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps({"society": args.society, "n": n, "wall_s": wall,
                                "spent": SPENT, "tokens": TOKENS, "usage": usage,
                                "concurrency": args.concurrency,
                                "parallel": args.parallel}) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
