"""Score voting rules on a pool of samples drawn by `benchmarks/pool.py` (issue 15).

Prints, per arm: per-sample accuracy, truncation rate, coverage (any sample right) and
plurality accuracy; then candidate societies, each scored by driving the `consensus`
organisation itself over the pool, with its accuracy and tokens per problem.

    python benchmarks/pool_rules.py benchmarks/results/pool-gsm8k-tune.jsonl
    python benchmarks/pool_rules.py benchmarks/results/pool-gsm8k-tune150.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minsky.answers import answers_match, extract_answer
from minsky.messages import ChatReply, Options
from minsky.organisations.base import Member, Round, SocietyView, Task, Turn, drive
from minsky.organisations.consensus import ConsensusParams, consensus
from minsky.organisations.weighing import Ballot, confidence, is_whole, unused_quantities, weigh
from minsky.pyrun import extract_program, program_answer, run_program
from minsky.society import load


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
    return pool, gold


def ok(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_match(answer, gold, "number")


def arm_table(pool: dict[str, dict[str, list[Sample]]], gold: dict[str, str]) -> None:
    arms = sorted({a for c in pool.values() for a in c})
    print(f"{len(pool)} problems; each arm over the problems it was drawn for")
    print(f"{'arm':12} {'problems':>8} {'per-sample':>10} {'truncated':>9} {'no answer':>9} "
          f"{'coverage':>8} {'plurality':>9} {'tokens':>7}")
    for arm in arms:
        n = right = trunc = none = cover = plural = tokens = 0
        drawn = {case: arms_ for case, arms_ in pool.items() if arm in arms_}
        for case, arms_ in drawn.items():
            ss = arms_[arm]
            n += len(ss)
            right += sum(ok(s.answer, gold[case]) for s in ss)
            trunc += sum(s.truncated for s in ss)
            none += sum(s.answer is None for s in ss)
            cover += any(ok(s.answer, gold[case]) for s in ss)
            tally = weigh([Ballot(str(i), s.answer) for i, s in enumerate(ss)])
            plural += ok(tally.winner, gold[case])
            tokens += sum(s.tokens for s in ss)
        m = len(drawn)
        print(f"{arm:12} {m:8} {right / n:10.1%} {trunc / n:9.1%} {none / n:9.1%} {cover / m:8.1%} "
              f"{plural / m:9.1%} {tokens / m:7.0f}")


def questions(bench: str) -> dict[str, str]:
    """Each case's question, by id, for the rules that read the question."""
    from pool import BENCH_FILES

    from minsky.evals.benchmarks import load_benchmark

    return {c.id: c.question for c in load_benchmark(BENCH_FILES[bench])}


def pool_answers(arms: dict[str, dict[str, object]], source: dict[str, tuple[str, int]],
                 used: list[Any]) -> Callable[[Round], list[Turn]]:
    """Answers to an organisation's rounds from one problem's pool: the member named in
    `source` as (arm, sample index) replies with that sample, which is added to `used`."""
    def answer(rnd: Round) -> list[Turn]:
        turns = []
        for ask in rnd.asks:
            arm, i = source[ask.agent]
            smp = arms[arm]["samples"][i]  # type: ignore[index]
            used.append(smp)
            turns.append(Turn(ask, ChatReply(smp["text"], finish_reason=smp["finish"],
                                             logprobs=smp["logprobs"])))
        return turns

    return answer


def simulate(path: Path, plan: list[tuple[str, str, int]], params: dict[str, object],
             escalate: list[tuple[str, str, int]] | None = None,
             asked: dict[str, str] | None = None) -> tuple[float, float, float, int]:
    """Drive the `consensus` organisation itself over the pool: member k of `plan` is
    (group, arm, sample index) and answers with that sample. Returns accuracy, tokens per
    problem, asks per problem, problems. `asked` maps case ids to their questions."""
    rows: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["case"]][row["arm"]] = row
    need: dict[str, int] = defaultdict(int)  # arm → samples the plan reads
    for _, arm, i in plan + (escalate or []):
        need[arm] = max(need[arm], i + 1)
    cases = {c: arms for c, arms in rows.items()
             if all(arm in arms and len(arms[arm]["samples"]) >= k  # type: ignore[arg-type]
                    for arm, k in need.items())}
    members = [Member(f"{g}-{arm}-{i}", "", Options(), True, g) for g, arm, i in plan]
    members += [Member(f"{g}-{arm}-{i}", "", Options(), True, "expert")
                for g, arm, i in (escalate or [])]
    source = {m.name: (arm, i) for m, (_, arm, i) in zip(members, plan + (escalate or []),
                                                         strict=True)}
    view = SocietyView(members, ConsensusParams.model_validate(params))
    right = tokens = asks = 0
    for arms in cases.values():
        first = next(iter(arms.values()))
        case = str(first["case"])
        used: list[Any] = []  # the samples the organisation asked for
        # the shared pump (`drive`, the step the runner takes), with the pool answering
        _, outcome = drive(consensus(Task((asked or {}).get(case, case), "number"), view),
                           pool_answers(arms, source, used))
        tokens += sum(smp["prompt_tokens"] + smp["tokens"] for smp in used)
        asks += len(used)
        right += ok(outcome.answer, str(first["gold"]))
    n = len(cases)
    if not n:
        return 0.0, 0.0, 0.0, 0
    return right / n, tokens / n, asks / n, n


SOCIETIES: dict[str, tuple[list[tuple[str, str, int]], dict[str, object]]] = {}
# the built-in `consensus` members in society-file order, as pool arms: the greedy
# program, 3 program samples, the greedy chain of thought, 3 samples shown one worked
# program, 3 more program samples
DEFAULT_PLAN = [("programmer", "pot-greedy", 0), *[("programmer", "pot-0.8", i) for i in range(3)],
                ("reasoner", "cot-greedy", 0), *[("programmer", "pot1-0.8", i) for i in range(3)],
                *[("programmer", "pot-0.8", i) for i in range(3, 6)]]


def default_params() -> dict[str, object]:
    """The built-in `consensus` society's parameters, read from its society file."""
    return dict(load("consensus").params.model_dump())


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
    # the default's order (greedy program, 3 samples, the reasoner, 3 more), with the
    # checks against the question, and with one worked program shown (`examples = 1`)
    default = {"window": 4, "cross_check": 0.5, "stop": "unanimous"}
    for pre, extra in (("pot", {}), ("pot1", {"examples": 1})):
        greedy = ("programmer", f"{pre}-greedy", 0)
        progs = [("programmer", f"{pre}-0.8", i) for i in range(6)]
        plan = [greedy, *progs[:3], cot, *progs[3:]]
        SOCIETIES[f"{pre} default"] = (plan, {**default, **extra})
        for uq, nw in ((0.5, 1.0), (1.0, 0.25), (0.5, 0.25), (0.0, 0.0)):
            SOCIETIES[f"{pre} default unused={uq} not_whole={nw}"] = (
                plan, {**default, **extra, "unused_quantity": uq, "not_whole": nw})
    # the built-in default as its society file sets it (needs the pot1-0.8 arm), and
    # with each of its rules left out
    rules = default_params()
    three = {k: rules[k] for k in ("unused_quantity", "not_whole", "confidence")}
    for pre, extra in (("pot", {}), ("pot1", {"examples": 1})):
        greedy = ("programmer", f"{pre}-greedy", 0)
        progs = [("programmer", f"{pre}-0.8", i) for i in range(6)]
        SOCIETIES[f"{pre} default + the three rules of consensus.toml"] = (
            [greedy, *progs[:3], cot, *progs[3:]], {**default, **extra, **three})
    twelve = [("programmer", "pot-greedy", 0), *[("programmer", "pot-0.8", i) for i in range(6)],
              cot, *[("programmer", "pot1-0.8", i) for i in range(6)]]
    SOCIETIES["12 samples in both framings + cot, consensus.toml's rules"] = (twelve, rules)
    for power in (2, 4, 8):
        for how in ("mean", "tail"):
            SOCIETIES[f"consensus.toml, confidence {how} power {power}"] = (
                DEFAULT_PLAN, {**rules, "confidence": how, "confidence_power": power})
    for left_out, undo in (("", {}), (" without unused_quantity", {"unused_quantity": 1.0}),
                           (" without not_whole", {"not_whole": 1.0}),
                           (" without confidence", {"confidence": "none"}),
                           (" without all three", {"unused_quantity": 1.0, "not_whole": 1.0,
                                                   "confidence": "none"})):
        SOCIETIES[f"consensus.toml{left_out}"] = (DEFAULT_PLAN, {**rules, **undo})
    # earlier stops (issue 27, item 5): a smaller unanimous window ends sooner
    for window in (2, 3):
        SOCIETIES[f"consensus.toml, window {window}"] = (DEFAULT_PLAN, {**rules, "window": window})
    # chain-of-thought samples in the mix: errors of a chain of thought and of a program
    # are less alike than two programs' (needs the cot-0.7 arm, six samples)
    cots = [("reasoner", "cot-0.7", i) for i in range(6)]
    greedy, progs, shown = DEFAULT_PLAN[0], DEFAULT_PLAN[1:4], DEFAULT_PLAN[5:8]
    SOCIETIES["consensus.toml, resamplers → 3 cot0.7"] = (
        [greedy, *progs, cot, *shown, *cots[:3]], rules)
    SOCIETIES["consensus.toml, resamplers → 3 cot0.7, cross_check 1"] = (
        [greedy, *progs, cot, *shown, *cots[:3]], {**rules, "cross_check": 1.0})
    SOCIETIES["consensus.toml, shown → 3 cot0.7"] = (
        [greedy, *progs, cot, *cots[:3], *DEFAULT_PLAN[8:]], rules)
    SOCIETIES["consensus.toml + 3 cot0.7"] = ([*DEFAULT_PLAN, *cots[:3]], rules)
    SOCIETIES["greedy + 2 progs + cot + 2 shown + 4 cot0.7"] = (
        [greedy, *progs[:2], cot, *shown[:2], *cots[:4]], rules)
    SOCIETIES["cot + 6 cot0.7 (CoT only), consensus.toml's rules"] = ([cot, *cots], rules)
    SOCIETIES["cot+3cot0.3+3cot0.7 (CoT only)"] = (
        [cot, *[("reasoner", "cot-0.3", i) for i in range(3)],
         *[("reasoner", "cot-0.7", i) for i in range(3)]], {})


def evidence(path: Path, asked: dict[str, str]) -> None:
    """What tells a right program from a wrong one, sample by sample: whole answers,
    quantities of the question left out, mean token probability (plain-prompt program
    arms only: greedy and sampled)."""
    seen: list[tuple[bool, bool, float, bool]] = []  # whole, all written, confidence, right
    for text in path.read_text().splitlines():
        row = json.loads(text)
        if not row["arm"].startswith("pot-"):
            continue
        for s in row["samples"]:
            program = extract_program(s["text"])
            answer = program_answer(run_program(program)) if program else None
            if program is None or answer is None:
                continue
            seen.append((is_whole(answer),
                         not unused_quantities(asked[row["case"]], program),
                         confidence(s["logprobs"], "mean"), ok(answer, str(row["gold"]))))
    if not seen:
        return

    def line(label: str, picked: list[tuple[bool, bool, float, bool]]) -> None:
        right = sum(r for *_, r in picked)
        print(f"  {label:44} {right:4}/{len(picked):<4} {right / max(1, len(picked)):6.1%}")

    print(f"\nprogram samples that returned a number: {len(seen)}; right among those that…")
    line("return a whole number", [x for x in seen if x[0]])
    line("return anything else", [x for x in seen if not x[0]])
    line("write every quantity of the question", [x for x in seen if x[1]])
    line("leave one out", [x for x in seen if not x[1]])
    by_confidence = sorted(seen, key=lambda x: x[2])
    q = len(seen) // 4
    line("have mean token probability in the top quarter", by_confidence[3 * q:])
    line("… in the bottom quarter", by_confidence[:q])


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
    ap.add_argument("--bench", default="gsm8k", help="the benchmark the pool was drawn from")
    args = ap.parse_args()
    asked = questions(args.bench)
    pool, gold = read_pool(args.pool)
    arm_table(pool, gold)
    evidence(args.pool, asked)
    failures(pool)
    _plans()
    print("\nsocieties (the consensus organisation itself, driven over the pool):")
    for name, (plan, params) in SOCIETIES.items():
        acc, tok, asks, n = simulate(args.pool, plan, params, asked=asked)
        if not n:
            continue  # the pool lacks an arm this society needs
        print(f"{acc:6.1%} {tok:6.0f} tokens {asks:4.1f} asks  n={n}  {name}")


if __name__ == "__main__":
    main()
