"""Benchmark: the prompt-prefix cache across rounds, on (default) vs off.

    python benchmarks/prefix_cache.py [--society debate] [--n 3] [--threads 2]

Runs `--society` on the first `--n` problems of a fixed GSM8K sample (seed 0) twice, on
one fresh backend each: with the prefix cache (a member asked again decodes only its new
turn; members sharing a prompt decode it once) and without (every request decodes its
whole prompt). Reports wall time and prompt tokens decoded vs reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from benchmarks_common import gsm8k_sample

from minsky.backends.registry import Backends
from minsky.plugin_api import BackendSettings
from minsky.runner import Runner
from minsky.society import load


async def measure(society_name: str, cases, cache: bool, threads: int) -> dict:
    runner = Runner(Backends(BackendSettings(threads=threads, prefix_cache=cache)))
    society = load(society_name)
    start = time.perf_counter()
    prompt = cached = completion = 0
    try:
        for _, question, _ in cases:
            r = await runner.run(society, question, "number")
            prompt += r.usage.prompt_tokens
            cached += r.usage.cached_tokens
            completion += r.usage.completion_tokens
    finally:
        await runner.backends.aclose()
    return {"prefix_cache": cache, "wall_s": round(time.perf_counter() - start, 1),
            "prompt_tokens": prompt, "reused_tokens": cached,
            "decoded_prompt_tokens": prompt - cached, "completion_tokens": completion}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--society", default="debate")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    cases = gsm8k_sample(50, 0)[: args.n]
    rows = [await measure(args.society, cases, c, args.threads) for c in (True, False)]
    print("| prefix cache | wall (s) | prompt tokens | reused from cache | decoded | "
          "completion tokens |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {'on' if r['prefix_cache'] else 'off'} | {r['wall_s']} | "
              f"{r['prompt_tokens']} | {r['reused_tokens']} | {r['decoded_prompt_tokens']} | "
              f"{r['completion_tokens']} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    asyncio.run(main())
