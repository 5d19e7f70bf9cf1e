"""Benchmark: the contamination test on the embedded model — validated, then applied.

    python benchmarks/contamination.py --threads 2

1. Validation where the answer is known. 40 made-up lines ("the falcon keeps the 4813
   copper lanterns."), which no model was trained on, are tested twice: with the
   canonical sequence placed in the context first ("primed": the model has seen this
   order, so it should find it likelier than any shuffle → small p), and with no context
   ("unprimed": the lines are exchangeable → large p). A third test numbers the same
   lines ("Record 7: …"): unseen, but no longer exchangeable — the canonical order is
   the counting order — which shows what the test assumes.
2. The development sets in ../shared/data/: each file's first 5 shards of 8 examples,
   10 random orders per shard (the `minsky contamination` defaults).

Prints a Markdown table; one JSON line per test is appended to --out (`--only TEXT` runs
just the tests whose name contains TEXT). The scores go through the runner's gate (one
direct run, `Runner.direct`), as every model call does; `--log PATH` keeps them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from pathlib import Path

from minsky.backends.base import scoring
from minsky.backends.registry import Backends
from minsky.direct import DirectRun
from minsky.evals.contamination import PREFIX, contamination_test, examples_of, run_loglik
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog
from minsky.runner import Runner

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV_SETS = [
    "gsm8k/train.jsonl", "mawps/mawpsaddsub.jsonl", "arc/ARC-Challenge-validation.jsonl",
    "arc/ARC-Easy-validation.jsonl", "mmlu/validation.jsonl",
    "commonsenseqa/train_rand_split.jsonl", "openbookqa/validation.jsonl",
]
ANIMALS = ["falcon", "otter", "heron", "lynx", "badger", "marten", "ibis", "newt"]
THINGS = ["copper lanterns", "glass beads", "oak barrels", "silk ropes", "tin whistles"]
VERBS = ["keeps", "sells", "hides", "mends", "counts"]


def made_up(n: int = 40, seed: int = 0, numbered: bool = False) -> list[str]:
    rng = random.Random(seed)
    return [f"{f'Record {i}: t' if numbered else 'T'}he {rng.choice(ANIMALS)} "
            f"{rng.choice(VERBS)} the {rng.randrange(1000, 9999)} {rng.choice(THINGS)}."
            for i in range(n)]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/contamination.jsonl"))
    ap.add_argument("--only", default="", help="run only the tests whose name contains this")
    ap.add_argument("--log", type=Path, default=None,
                    help="a run log for the scores (default: none)")
    args = ap.parse_args()
    runner = Runner(Backends(BackendSettings(threads=args.threads)),
                    RunLog(args.log) if args.log else None)
    scoring(runner.backends.get(args.model))  # one that cannot score stops here
    lines = ["| data | shards × examples | mean canonical − shuffled (nats) | t | p |",
             "|---|---|---|---|---|"]
    args.out.parent.mkdir(parents=True, exist_ok=True)

    async def test(run: DirectRun, name: str, examples: list[str], prefix: str = PREFIX
                   ) -> None:
        if args.only not in name:
            return
        r = await contamination_test(run_loglik(run), examples, 5, 8, 10, 0, prefix)
        with args.out.open("a") as f:
            f.write(json.dumps({"data": name, **r}) + "\n")
        lines.append(f"| {name} | 5 × 8 | {r['mean_difference']:+.2f} | {r['t']:.2f} | "
                     f"{r['p_value']:.3g} |")
        print(lines[-1], flush=True)

    async with runner, runner.direct(args.model, "contamination benchmark") as run:
        fake = made_up()
        # the primed context holds every shard in canonical order; each scored text
        # (one shard in some order) then follows it
        await test(run, "made-up lines, primed (seen in order)", fake,
                   "A list:\n" + "\n".join(fake) + "\n\nThe same list again:\n")
        await test(run, "made-up lines, unprimed", fake)
        await test(run, "made-up lines numbered in order, unprimed", made_up(numbered=True))
        for rel in DEV_SETS:
            await test(run, rel, examples_of(DATA / rel))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
