"""A pool of samples per problem, for tuning voting rules offline (issue 15).

Every rule a society could use to pick its answer (plurality, abstention, weights, a
program cross-check, confidence, stopping) is a function of the replies it drew. So the
replies are drawn once, on a tuning sample kept apart from every seed-0 reporting
sample, and every rule is scored on the same pool by `benchmarks/pool_rules.py`.

Arms (each a list of requests per problem; a reply keeps its text, finish reason, tokens
and per-token log-probabilities):
- cot-greedy: the chain-of-thought prompt `single` uses, temperature 0, room to finish;
- cot-T: chain-of-thought samples at temperature T with top-k 20 / top-p 0.8 / repeat
  penalty 1.05 (Qwen's own generation settings);
- pot-greedy, pot-T: a `solution()` program instead of a chain of thought.

The samples are drawn through the runner's gate (one direct run, `Runner.direct`), as
every model call is: `--log PATH` keeps them in a run log, one round per problem.

    python benchmarks/pool.py --bench gsm8k --n 60 --out benchmarks/results/pool-gsm8k-tune.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

from minsky.backends.llama import LlamaBackend
from minsky.backends.registry import Backends
from minsky.direct import DirectRun
from minsky.evals.benchmarks import load_benchmark
from minsky.inputs.records import jsonl_rows
from minsky.messages import ChatRequest, Message, Options
from minsky.models import resolve_gguf
from minsky.organisations.answering import prompt
from minsky.organisations.base import Task
from minsky.organisations.consensus import program_examples
from minsky.plugin_api import Case
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.star.mine import reporting_exclusion

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCH_FILES = {"gsm8k": DATA / "gsm8k" / "train.jsonl", "mawps": DATA / "mawps"}
ROLE = "You are a careful problem solver. You reason step by step and check your arithmetic."
CODER = "You are a careful Python programmer who solves math word problems with code."
POT = (
    "{question}\n\nWrite a Python function `solution()` that computes the answer to this "
    "problem and returns it as a number. Use a variable for each quantity and one step per "
    "line. Reply with the code only, in one ```python block."
)
OPEN = "```python\n"  # the reply starts inside a code block, so the first fence closes it
FENCE = ["\n```"]  # the code block's closing fence: what follows is chatter
QWEN = {"top_k": 20, "top_p": 0.8, "repeat_penalty": 1.05}


def tuning_cases(path: Path, n: int) -> list[Case]:
    """n cases of the benchmark at `path`, drawn with seed 1 from those in no seed-0
    reporting sample, in file order."""
    # Exclude the reporting samples' own ids: every seed-0 sample of up to 500 cases (the
    # docs report on 50, 100 and 200), drawn as `load_benchmark(path, n, 0)` draws it.
    # Excluding only the 500-case sample is not enough: `random.sample` draws a small
    # sample of a file under ~4,100 cases by another method than a large one, so MAWPS's
    # 100 are not among its 500 (GSM8K's 50, 100 and 200 are among its 500, so the
    # GSM8K tuning pools are the same cases as before).
    report = reporting_exclusion(path).ids
    rest = [c for c in load_benchmark(path) if c.id not in report]
    picked = sorted(random.Random(1).sample(range(len(rest)), n))
    return [rest[i] for i in picked]


def arms(question: str, cot_t: list[float], k_cot: int, pot_t: list[float], k_pot: int
         ) -> dict[str, list[ChatRequest]]:
    task = Task(question, "number")
    cot = [Message("system", ROLE), Message("user", prompt("solve", task))]
    pot = [Message("system", CODER), Message("user", POT.format(question=question))]
    # few-shot arms: the worked programs `consensus` shows with `examples = 3` or `1`
    pots = [pot[0], *program_examples(3), pot[1]]
    pot1 = [pot[0], *program_examples(1), pot[1]]
    out = {
        "pots-greedy": [ChatRequest(pots, Options(max_tokens=320, logprobs=True, stop=FENCE),
                                    prefix=OPEN)],
        "pot1-greedy": [ChatRequest(pot1, Options(max_tokens=320, logprobs=True, stop=FENCE),
                                    prefix=OPEN)],
        "cot-greedy": [ChatRequest(cot, Options(max_tokens=640, logprobs=True))],
        "pot-greedy": [ChatRequest(pot, Options(max_tokens=320, logprobs=True, stop=FENCE),
                                   prefix=OPEN)],
    }
    for t in cot_t:
        out[f"cot-{t}"] = [ChatRequest(cot, Options(temperature=t, max_tokens=640, seed=s,
                                                    logprobs=True, **QWEN))
                           for s in range(k_cot)]
    for t in pot_t:
        out[f"pot-{t}"] = [ChatRequest(pot, Options(temperature=t, max_tokens=320, seed=s,
                                                    logprobs=True, stop=FENCE, **QWEN),
                                       prefix=OPEN)
                           for s in range(k_pot)]
        out[f"pots-{t}"] = [ChatRequest(pots, Options(temperature=t, max_tokens=320, seed=s,
                                                      logprobs=True, stop=FENCE, **QWEN),
                                        prefix=OPEN)
                            for s in range(k_pot)]
        out[f"pot1-{t}"] = [ChatRequest(pot1, Options(temperature=t, max_tokens=320, seed=s,
                                                      logprobs=True, stop=FENCE, **QWEN),
                                        prefix=OPEN)
                            for s in range(k_pot)]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="gsm8k", choices=sorted(BENCH_FILES))
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--report", action="store_true",
                    help="draw the seed-0 reporting sample instead of the tuning sample")
    ap.add_argument("--cot-t", default="0.5")
    ap.add_argument("--k-cot", type=int, default=4)
    ap.add_argument("--pot-t", default="0.7")
    ap.add_argument("--k-pot", type=int, default=8)
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--first", type=int, default=0, help="only the first K cases of the sample")
    ap.add_argument("--arms", default="", help="comma-separated arm names to draw (default all)")
    ap.add_argument("--log", type=Path, default=None,
                    help="a run log for the samples (default: none)")
    args = ap.parse_args()
    cases = (load_benchmark(BENCH_FILES[args.bench], limit=args.n, seed=0) if args.report
             else tuning_cases(BENCH_FILES[args.bench], args.n))
    if args.first:
        cases = cases[: args.first]
    done = {(r["case"], r["arm"]) for r in jsonl_rows(args.out)}
    backend = LlamaBackend(resolve_gguf(args.model), n_parallel=16, n_ctx=16384)
    runner = Runner(Backends(overrides={args.model: backend}),
                    RunLog(args.log) if args.log else None)
    cot_t = [float(t) for t in args.cot_t.split(",") if t]
    pot_t = [float(t) for t in args.pot_t.split(",") if t]
    keep = {a for a in args.arms.split(",") if a}
    gate = asyncio.Semaphore(2)  # two problems in flight keep the batch full

    async def one(run: DirectRun, case: Case) -> None:
        todo = {a: rs for a, rs in arms(case.question, cot_t, args.k_cot, pot_t,
                                         args.k_pot).items()
                if (case.id, a) not in done and (not keep or a in keep)}
        if not todo:
            return
        async with gate:
            start = time.perf_counter()
            flat = [r for rs in todo.values() for r in rs]
            replies = await run.chat(flat, "sample", case.id)
            wall = time.perf_counter() - start
        it = iter(replies)
        with args.out.open("a", encoding="utf-8") as f:
            for arm, rs in todo.items():
                got = [next(it) for _ in rs]
                pairs = zip(rs, got, strict=True)
                f.write(json.dumps({
                    "case": case.id, "arm": arm, "gold": case.answer, "wall_s": round(wall, 2),
                    "model": args.model,
                    "samples": [{"text": f"{r.prefix}{g.text}\n```" if r.prefix else g.text,
                                 "finish": g.finish_reason,
                                 "prompt_tokens": g.usage.prompt_tokens,
                                 "tokens": g.usage.completion_tokens,
                                 "logprobs": g.logprobs} for r, g in pairs],
                }) + "\n")
        print(f"{case.id} {wall:.1f}s", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    async with runner, runner.direct(args.model, "pool", question=f"{args.bench} pool") as run:
        await asyncio.gather(*(one(run, c) for c in cases))


if __name__ == "__main__":
    asyncio.run(main())
