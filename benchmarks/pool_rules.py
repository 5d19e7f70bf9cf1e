"""Score voting rules on a pool of samples drawn by `benchmarks/pool.py` (issue 15).

Prints, per arm: per-sample accuracy, truncation rate, coverage (any sample right) and
plurality accuracy; then candidate societies, each scored by driving the `consensus`
organisation itself over the pool, with its accuracy and tokens per problem.

    python benchmarks/pool_rules.py benchmarks/results/pool-gsm8k-tune.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from minsky.answers import answers_match, extract_answer
from minsky.messages import ChatReply, Options
from minsky.organisations.base import Member, SocietyView, Task, Turn
from minsky.organisations.consensus import ConsensusParams, consensus
from minsky.pyrun import extract_program, program_answer, run_program
from minsky.weighing import Ballot, weigh


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


def simulate(path: Path, plan: list[tuple[str, str, int]], params: dict[str, object],
             escalate: list[tuple[str, str, int]] | None = None
             ) -> tuple[float, float, float, int]:
    """Drive the `consensus` organisation itself over the pool: member k of `plan` is
    (group, arm, sample index) and answers with that sample. Returns accuracy, tokens per
    problem, asks per problem, problems."""
    rows: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["case"]][row["arm"]] = row
    need = {arm for _, arm, _ in plan + (escalate or [])}
    cases = {c: arms for c, arms in rows.items() if need <= set(arms)}
    members = [Member(f"{g}-{arm}-{i}", "", Options(), True, g) for g, arm, i in plan]
    members += [Member(f"{g}-{arm}-{i}", "", Options(), True, "expert")
                for g, arm, i in (escalate or [])]
    source = {m.name: (arm, i) for m, (_, arm, i) in zip(members, plan + (escalate or []),
                                                         strict=True)}
    view = SocietyView(members, ConsensusParams.model_validate(params))
    right = tokens = asks = 0
    for arms in cases.values():
        first = next(iter(arms.values()))
        gen = consensus(Task(str(first["case"]), "number"), view)
        try:
            rnd = next(gen)
            while True:
                turns = []
                for ask in rnd.asks:
                    arm, i = source[ask.agent]
                    smp = arms[arm]["samples"][i]  # type: ignore[index]
                    tokens += smp["prompt_tokens"] + smp["tokens"]
                    asks += 1
                    turns.append(Turn(ask, ChatReply(smp["text"], finish_reason=smp["finish"],
                                                     logprobs=smp["logprobs"])))
                rnd = gen.send(turns)
        except StopIteration as stop:
            right += ok(stop.value.answer, str(first["gold"]))
    n = len(cases)
    if not n:
        return 0.0, 0.0, 0.0, 0
    return right / n, tokens / n, asks / n, n


SOCIETIES: dict[str, tuple[list[tuple[str, str, int]], dict[str, object]]] = {}


def _plans() -> None:
    cot = ("reasoner", "cot-greedy", 0)
    pot = ("programmer", "pot-greedy", 0)
    for t in ("0.5", "0.8"):
        progs = [("programmer", f"pot-{t}", i) for i in range(6)]
        for check in (1.0, 0.5, 0.0):
            SOCIETIES[f"cot+pot+6pot{t} check={check}"] = ([cot, pot, *progs],
                                                           {"cross_check": check})
        SOCIETIES[f"cot+pot+6pot{t} window4"] = ([cot, pot, *progs],
                                                 {"window": 4, "cross_check": 0.5})
        SOCIETIES[f"cot+pot+6pot{t} window4 unanimous"] = (
            [cot, pot, *progs], {"window": 4, "cross_check": 0.5, "stop": "unanimous"})
        SOCIETIES[f"pot+6pot{t}+cot window4 unanimous"] = (
            [pot, *progs[:3], cot, *progs[3:]],
            {"window": 4, "cross_check": 0.5, "stop": "unanimous"})
        SOCIETIES[f"cot+pot+6pot{t}+3cot0.7"] = (
            [cot, pot, *progs, *[("reasoner", "cot-0.7", i) for i in range(3)]],
            {"cross_check": 0.5})
        SOCIETIES[f"cot+pot+6pot{t} conf=tail"] = ([cot, pot, *progs],
                                                   {"cross_check": 0.5, "confidence": "tail"})
        SOCIETIES[f"cot+pot+6pot{t} conf=mean"] = ([cot, pot, *progs],
                                                   {"cross_check": 0.5, "confidence": "mean"})
    SOCIETIES["cot+pot+3pot0.5+3pot0.8"] = (
        [cot, pot, *[("programmer", "pot-0.5", i) for i in range(3)],
         *[("programmer", "pot-0.8", i) for i in range(3)]], {"cross_check": 0.5})
    SOCIETIES["cot+3cot0.3+3cot0.7 (CoT only)"] = (
        [cot, *[("reasoner", "cot-0.3", i) for i in range(3)],
         *[("reasoner", "cot-0.7", i) for i in range(3)]], {})


def failures(pool: dict[str, dict[str, list[Sample]]]) -> None:
    """Why program samples gave no answer: the interpreter's error, grouped."""
    import re
    from collections import Counter

    reasons: Counter[str] = Counter()
    total = 0
    for arms in pool.values():
        for arm, samples in arms.items():
            if not arm.startswith("pot"):
                continue
            for s in samples:
                total += 1
                if s.answer is None:
                    why = re.sub(r"^line \d+: ", "", s.program_error or "no number returned")
                    reasons[re.sub(r"name '\w+'", "name X", why)] += 1
    print(f"\nprogram samples without an answer, of {total}:")
    for why, k in reasons.most_common():
        print(f"{k:5} {why}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", type=Path)
    args = ap.parse_args()
    pool, gold = read_pool(args.pool)
    arm_table(pool, gold)
    failures(pool)
    _plans()
    print("\nsocieties (the consensus organisation itself, driven over the pool):")
    for name, (plan, params) in SOCIETIES.items():
        acc, tok, asks, n = simulate(args.pool, plan, params)
        if not n:
            continue  # the pool lacks an arm this society needs
        print(f"{acc:6.1%} {tok:6.0f} tokens {asks:4.1f} asks  n={n}  {name}")


if __name__ == "__main__":
    main()
