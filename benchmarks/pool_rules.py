"""Score voting rules on a pool of samples drawn by `benchmarks/pool.py` (issue 15).

Prints, per arm: per-sample accuracy, truncation rate, coverage (any sample right) and
plurality accuracy; then every rule of a grid (which samples vote, group weights, the
program cross-check, confidence weighting, abstention) with its accuracy and tokens per
problem, best first. The rules are `minsky.weighing`'s, applied exactly as the
`consensus` organisation applies them.

    python benchmarks/pool_rules.py benchmarks/results/pool-gsm8k-tune.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from minsky.answers import answers_match, extract_answer
from minsky.pyrun import extract_program, program_answer, run_program
from minsky.weighing import Ballot, confidence, cross_check, weigh


@dataclass
class Sample:
    arm: str
    answer: str | None
    truncated: bool
    tokens: int  # prompt + completion
    logprobs: list[float]
    program_error: str | None = None


def read_pool(path: Path) -> tuple[dict[str, dict[str, list[Sample]]], dict[str, str]]:
    pool: dict[str, dict[str, list[Sample]]] = defaultdict(dict)
    gold: dict[str, str] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        gold[row["case"]] = row["gold"]
        samples = []
        for s in row["samples"]:
            err = None
            if row["arm"].startswith("pot"):
                program = extract_program(s["text"])
                if program is None:
                    answer, err = None, "no program"
                else:
                    result = run_program(program)
                    answer, err = program_answer(result), result.error
            else:
                answer = extract_answer(s["text"], "number")
            samples.append(Sample(row["arm"], answer, s["finish"] == "length",
                                  s["prompt_tokens"] + s["tokens"], s["logprobs"] or [], err))
        pool[row["case"]][row["arm"]] = samples
    complete = {c: arms for c, arms in pool.items() if len(arms) == max(map(len, pool.values()))}
    return complete, gold


def ok(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_match(answer, gold, "number")


def arm_table(pool: dict[str, dict[str, list[Sample]]], gold: dict[str, str]) -> None:
    arms = sorted({a for c in pool.values() for a in c})
    print(f"{len(pool)} problems")
    print(f"{'arm':12} {'per-sample':>10} {'truncated':>9} {'no answer':>9} {'coverage':>8} "
          f"{'plurality':>9} {'tokens':>7}")
    for arm in arms:
        n = right = trunc = none = cover = plural = tokens = 0
        for case, arms_ in pool.items():
            ss = arms_[arm]
            n += len(ss)
            right += sum(ok(s.answer, gold[case]) for s in ss)
            trunc += sum(s.truncated for s in ss)
            none += sum(s.answer is None for s in ss)
            cover += any(ok(s.answer, gold[case]) for s in ss)
            tally = weigh([Ballot(str(i), s.answer) for i, s in enumerate(ss)])
            plural += ok(tally.winner, gold[case])
            tokens += sum(s.tokens for s in ss)
        m = len(pool)
        print(f"{arm:12} {right / n:10.1%} {trunc / n:9.1%} {none / n:9.1%} {cover / m:8.1%} "
              f"{plural / m:9.1%} {tokens / m:7.0f}")


def decide(samples: list[Sample], w_cot: float, w_pot: float, check: float, conf: str,
           power: float, abstain: bool) -> str | None:
    ballots = []
    for i, s in enumerate(samples):
        group = "programmer" if s.arm.startswith("pot") else "reasoner"
        w = (w_pot if group == "programmer" else w_cot)
        w *= confidence(s.logprobs, conf) ** power  # type: ignore[arg-type]
        skip = "truncated" if abstain and s.truncated else None
        ballots.append(Ballot(str(i), s.answer, group, w, skip))
    return weigh(cross_check(ballots, "reasoner", "programmer", check)).winner


def rules(pool: dict[str, dict[str, list[Sample]]], gold: dict[str, str], top: int) -> None:
    arms = sorted({a for c in pool.values() for a in c})
    cot = [a for a in arms if a.startswith("cot-") and a != "cot-greedy"]
    pot = [a for a in arms if a.startswith("pot-") and a != "pot-greedy"]
    # which samples vote: greedy CoT first (it breaks ties), then greedy program, then
    # k program samples from one temperature and j CoT samples from one temperature
    pools = []
    for pt, ct in itertools.product([*pot, None], [*cot, None]):
        for k in (0, 2, 4, 6):
            for j in (0, 1, 2, 3):
                if (pt is None) != (k == 0) or (ct is None) != (j == 0):
                    continue
                pools.append((pt, k, ct, j))
    results = []
    for (pt, k, ct, j) in pools:
        for w_pot, check, conf, power, abstain in itertools.product(
                (0.5, 1.0, 1.5, 2.0), (1.0, 0.5, 0.0), ("none", "mean", "tail"), (1.0, 4.0),
                (True, False)):
            if conf == "none" and power != 1.0:
                continue
            right = tokens = 0
            for case, a in pool.items():
                chosen = a["cot-greedy"] + a["pot-greedy"]
                chosen += (a[pt][:k] if pt else []) + (a[ct][:j] if ct else [])
                right += ok(decide(chosen, 1.0, w_pot, check, conf, power, abstain), gold[case])
                tokens += sum(s.tokens for s in chosen)
            results.append((right / len(pool), tokens / len(pool),
                            f"{pt}x{k} {ct}x{j} w_pot={w_pot} check={check} conf={conf}^{power} "
                            f"abstain={abstain}"))
    greedy = sum(ok(a["cot-greedy"][0].answer, gold[c]) for c, a in pool.items()) / len(pool)
    greedy_tokens = sum(a["cot-greedy"][0].tokens for a in pool.values()) / len(pool)
    print(f"\ngreedy CoT {greedy:.1%} at {greedy_tokens:.0f} tokens; best rules:")
    for acc, tok, name in sorted(results, key=lambda r: (-r[0], r[1]))[:top]:
        print(f"{acc:6.1%} {tok:6.0f} ({tok / greedy_tokens:.1f}x)  {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    pool, gold = read_pool(args.pool)
    arm_table(pool, gold)
    rules(pool, gold, args.top)


if __name__ == "__main__":
    main()
