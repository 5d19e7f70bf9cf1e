"""Benchmark reads: the figures docs/benchmarks.md derives from saved results files.

    python benchmarks/reads.py greedy     # same greedy society, two runs: same answers?
    python benchmarks/reads.py tool-use   # calc vs no calc, split by whether calc called a tool
    python benchmarks/reads.py arena      # answer lengths per contestant
    python benchmarks/reads.py gains      # annotation: gains against thresholds, at human calls
    python benchmarks/reads.py matched    # organisations vs the vote of as many samples
    python benchmarks/reads.py consensus FILE  # the default society's members, from the log
    python benchmarks/reads.py choices FILE    # option scoring: one shift vs all, letters
    python benchmarks/reads.py star FILE       # each society on a trained member vs the base

Nothing here runs a model. `tool-use` reads the run log (`$MINSKY_HOME/logs.db`) of the
machine that ran the evaluation.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from benchmarks_common import run_log, tool_calls

from minsky.answers import answers_match
from minsky.evals.harness import vote_prefixes
from minsky.evals.stats import mcnemar
from minsky.results import FAILED
from minsky.runlog import RunLog
from minsky.tools.toolformer import agreement

RESULTS = Path(__file__).resolve().parent / "results"


def rows(name: str) -> list[dict]:
    return [json.loads(x) for x in (RESULTS / name).read_text().splitlines() if x.strip()]


def greedy() -> None:
    # two runs of the same greedy society on the same problems (case ids "train:LINE")
    ev = {r["case"]: r for r in rows("eval-gsm8k100.jsonl") if r["society"] == "single"}
    org = [r for r in rows("gsm8k50.jsonl") if r.get("society") == "single" and "case" in r]
    same = sum(ev[r["case"]]["answer"] == r["answer"] for r in org)
    print(f"single on {len(org)} shared problems: same final answer {same}; correct "
          f"{sum(ev[r['case']]['correct'] for r in org)} (eval-gsm8k100) vs "
          f"{sum(r['correct'] for r in org)} (gsm8k50)")


def tool_use() -> None:
    log = run_log()
    # The "-terse-demo" files hold the runs with the Calculator's first, two-step demo.
    files = [(f"{stem}{variant}.jsonl", "case") for stem in ("eval-gsm8k100", "mawps100")
             for variant in ("", "-terse-demo")]
    for name, key in files:
        results = [r for r in rows(name) if key in r]
        for tools, base in (("calc", "single"), ("vote5-calc", "vote5")):
            baseline = {r[key]: r["correct"] for r in results if r["society"] == base}
            runs = [r for r in results if r["society"] == tools and r[key] in baseline]
            if not runs:
                continue
            split: dict[bool, list[tuple[bool, bool]]] = {True: [], False: []}
            calls = errors = 0
            for r in runs:
                n, bad = tool_calls(log, r["run_id"])
                calls, errors = calls + n, errors + bad
                split[n > 0].append((r["correct"], baseline[r[key]]))
            # the MAWPS rows record how much of the prompt the prefix cache reused
            cached = sum(r.get("cached_tokens", 0) for r in runs)
            prompt = sum(r["prompt_tokens"] for r in runs)
            print(f"{name}: {tools} vs {base} on {len(runs)} cases, {calls} tool calls "
                  f"({errors} errors); prompt tokens {prompt}, reused from cache {cached}")
            for used, pairs in split.items():
                print(f"  {'called a tool' if used else 'no call'}: {len(pairs)} cases, "
                      f"{tools} solved {sum(a for a, _ in pairs)}, "
                      f"{base} solved {sum(b for _, b in pairs)}")


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
    # A tried position's gain is its best candidate's (None: no candidate could be scored);
    # "At a human call" is the summary's own test (minsky.tools.toolformer.agreement).
    split: dict[bool, list[float]] = {True: [], False: []}
    for r in rows("toolformer-gsm8k200.jsonl"):
        for position, best in r["tried"]:
            if best is not None:
                at_human = agreement([position], r["human_marks"])["kept_at_human"] > 0
                split[at_human].append(best)
    positions = split[True] + split[False]
    print(f"positions whose best candidate gains > 0.25 (kept at --tau-f 0.25): "
          f"{sum(g > 0.25 for g in positions)} of {len(positions)}")
    for at_human, best in split.items():
        where = "at a human call" if at_human else "elsewhere"
        print(f"positions {where}: {len(best)}, best gain mean {statistics.mean(best):+.3f}, "
              f"median {statistics.median(best):+.3f}, > 0 at {sum(g > 0 for g in best)}")


def matched() -> None:
    # The organisations table's runs against vote9 of `minsky eval` on the same 50
    # problems, read off as the vote of as many samples as
    # the organisation made model calls: the compute-matched baseline, across two runs.
    log = run_log()
    ev = [r for r in rows("eval-gsm8k100.jsonl") if r.get("society") == "vote9"]
    org = [r for r in rows("gsm8k50.jsonl") if "case" in r]
    for name in ("debate", "mixture", "monarchy", "democracy"):
        mine = {r["case"]: r for r in org if r["society"] == name}
        if not mine:
            continue
        # calls per problem from the runs this machine's log still holds (the earliest
        # runs of that table were logged elsewhere and count 0 here)
        counts = [log.counts(r["run_id"])["calls"] for r in mine.values()]
        calls = [n for n in counts if n] or [0]
        k = round(sum(calls) / len(calls))
        if not 1 <= k <= 9:
            print(f"{name}: {k} calls a problem, beyond vote9")
            continue
        votes = {r["case"]: r for r in vote_prefixes(ev, "vote9", [k])}
        shared = sorted(i for i in mine if i in votes)
        test = mcnemar([votes[i]["correct"] for i in shared],
                       [mine[i]["correct"] for i in shared])
        tokens = sum(mine[i]["prompt_tokens"] + mine[i]["completion_tokens"] for i in shared)
        vote_tokens = sum(votes[i]["prompt_tokens"] + votes[i]["completion_tokens"]
                          for i in shared)
        print(f"{name}: {sum(calls) / len(calls):.1f} calls a problem (from {len(calls)} "
              f"logged runs); on {len(shared)} shared "
              f"problems {sum(mine[i]['correct'] for i in shared)} right against "
              f"vote9[:{k}] {sum(votes[i]['correct'] for i in shared)} "
              f"({test.b01} only {name}, {test.b10} only the vote, McNemar p = "
              f"{test.p_value:.3g}); tokens a problem {tokens / len(shared):.0f} vs "
              f"{vote_tokens / len(shared):.0f}")


def _outcome(log: RunLog, run_id: str) -> dict:
    outcome = log.outcome(run_id)
    assert outcome is not None, f"run {run_id} has no outcome in the log"
    return outcome


def consensus(name: str = "eval-gsm8k200.jsonl") -> None:
    # What the members of each `consensus` run said (from the run log), against the gold:
    # how good the greedy program and the reasoner are alone, how often any member had
    # the right answer (coverage, the ceiling of any way of choosing), how often the
    # first window was unanimous, and paired tests against the other societies.
    log = run_log()
    everything = rows(name)
    mine = {r["case"]: r for r in everything if r["society"] == "consensus"}
    n = len(mine)
    alone: dict[str, int] = {}
    asked: dict[str, int] = {}
    cover = stopped = programs = programs_right = 0
    for r in mine.values():
        outcome = _outcome(log, r["run_id"])
        said = {m["name"]: m["answer"] for m in outcome["members"]}
        right = {k: a is not None and answers_match(a, r["gold"], r.get("kind", "number"))
                 for k, a in said.items()}
        for k in ("coder", "reasoner"):
            asked[k] = asked.get(k, 0) + (k in said)
            alone[k] = alone.get(k, 0) + right.get(k, False)
        cover += any(right.values())
        stopped += len(said) <= 4
        progs = [k for k in said if k != "reasoner"]
        programs += len(progs)
        programs_right += sum(right[k] for k in progs)
    print(f"consensus on {n} cases of {name}: {sum(r['correct'] for r in mine.values())} "
          f"right; coverage (any member right) {cover}; first window unanimous {stopped}")
    print(f"greedy program alone {alone['coder']}/{asked['coder']}; reasoner alone "
          f"{alone['reasoner']}/{asked['reasoner']} (asked); program samples right "
          f"{programs_right}/{programs}")
    for other in sorted({r["society"] for r in everything} - {"consensus"}):
        theirs = {r["case"]: r for r in everything if r["society"] == other}
        shared = sorted(set(theirs) & set(mine))
        test = mcnemar([theirs[c]["correct"] for c in shared],
                       [mine[c]["correct"] for c in shared])
        print(f"vs {other} on {len(shared)} shared: consensus "
              f"{sum(mine[c]['correct'] for c in shared)}, {other} "
              f"{sum(theirs[c]['correct'] for c in shared)} ({test.b01} only consensus, "
              f"{test.b10} only {other}, McNemar p = {test.p_value:.3g})")
    # plain voting at the default's own token spend: the prefix of a larger vote (the
    # --matched vote@N) whose tokens a problem come nearest the default's
    for other in sorted({r["society"] for r in everything if len(r.get("votes") or []) > 5}):
        theirs = [r for r in everything if r["society"] == other and r["case"] in mine]
        spent = sum(mine[r["case"]]["prompt_tokens"] + mine[r["case"]]["completion_tokens"]
                    for r in theirs) / len(theirs)  # the default's, on the same problems
        prefixes = [{r["case"]: r for r in vote_prefixes(theirs, other, [k])}
                    for k in range(1, len(theirs[0]["votes"]) + 1)]

        def tokens(d: dict) -> float:
            return sum(r["prompt_tokens"] + r["completion_tokens"] for r in d.values()) / len(d)

        k, derived = min(enumerate(prefixes, 1), key=lambda kd: abs(tokens(kd[1]) - spent))
        test = mcnemar([derived[c]["correct"] for c in derived],
                       [mine[c]["correct"] for c in derived])
        print(f"vs {other}[:{k}] (nearest the default's {spent:.0f} tokens a problem: "
              f"{tokens(derived):.0f}) on {len(derived)} shared: consensus "
              f"{sum(mine[c]['correct'] for c in derived)}, {other}[:{k}] "
              f"{sum(r['correct'] for r in derived.values())} ({test.b01} only consensus, "
              f"{test.b10} only {other}[:{k}], McNemar p = {test.p_value:.3g})")


def choices(name: str = "eval-arc200.jsonl") -> None:
    # `consensus` on choice questions scores the options once per cyclic shift; its first
    # ask shows them unshifted, so that ask's pick alone is plain letter scoring (one
    # member scoring the options once), and the letters picked show the position prior
    # the shifts cancel.
    from collections import Counter

    log = run_log()
    everything = rows(name)
    mine = [r for r in everything if r["society"] == "consensus"]
    picks = [_outcome(log, r["run_id"])["members"][0]["answer"] for r in mine]
    once = [pick == r["gold"] for pick, r in zip(picks, mine, strict=True)]
    letters = Counter(picks)
    shifts = [bool(r["correct"]) for r in mine]
    test = mcnemar(once, shifts)
    print(f"{name}: {len(mine)} questions; all shifts {sum(shifts)} right; the unshifted "
          f"ask alone {sum(once)} right ({test.b01} only all shifts, {test.b10} only the "
          f"unshifted ask, McNemar p = {test.p_value:.3g})")
    print("letters the unshifted ask picked:", dict(sorted(letters.items())))
    print("letters the society picked:", dict(sorted(Counter(r["answer"] for r in mine)
                                                      .items())))
    print("gold letters:", dict(sorted(Counter(r["gold"] for r in mine).items())))
    # the same questions only: a results file may hold rows of cases outside the sample
    # (eval-arc200.jsonl has two `single` rows of questions outside its seed-0 sample)
    single = {r["case"]: r for r in everything if r["society"] == "single"}
    shared = [r for r in mine if r["case"] in single]
    test = mcnemar([single[r["case"]]["correct"] for r in shared],
                   [r["correct"] for r in shared])
    print(f"single on the same {len(shared)}: {sum(single[r['case']]['correct'] for r in shared)}"
          f" right ({test.b01} only consensus, {test.b10} only single, McNemar p = "
          f"{test.p_value:.3g}); letters it answered:",
          dict(sorted(Counter(str(single[r["case"]]["answer"]) for r in shared).items())))


def star(name: str = "eval-gsm8k200-star-r1.jsonl", base: str = "eval-gsm8k200.jsonl") -> None:
    # the same societies on the base model (`base`) and on base + a STaR adapter (`name`),
    # paired on the problems both answered; failed runs (no answer) are left out

    def last(file: str) -> dict[tuple[str, str], dict]:
        return {(r["society"], r["case"]): r for r in rows(file) if "case" in r}

    before, after = last(base), last(name)
    for society in dict.fromkeys(s for s, _ in after):
        shared = sorted(c for s, c in after if s == society and (s, c) in before
                        and after[(s, c)]["status"] not in FAILED
                        and before[(s, c)]["status"] not in FAILED)
        if not shared:
            continue
        a = [before[(society, c)]["correct"] for c in shared]
        b = [after[(society, c)]["correct"] for c in shared]
        test = mcnemar(a, b)

        def tokens(rs: dict, c: str, s: str = society) -> int:
            return rs[(s, c)]["prompt_tokens"] + rs[(s, c)]["completion_tokens"]

        print(f"{society}: on {len(shared)} problems base {sum(a)} ({sum(a) / len(a):.1%}), "
              f"trained {sum(b)} ({sum(b) / len(b):.1%}); {test.b01} only trained, "
              f"{test.b10} only base right (McNemar p = {test.p_value:.3g}); tokens a "
              f"problem {sum(tokens(before, c) for c in shared) / len(shared):.0f} vs "
              f"{sum(tokens(after, c) for c in shared) / len(shared):.0f}; a run's own wall "
              f"time {sum(before[(society, c)]['wall_s'] for c in shared) / len(shared):.0f}"
              f" s vs {sum(after[(society, c)]['wall_s'] for c in shared) / len(shared):.0f}"
              " s")


if __name__ == "__main__":
    reads = {"greedy": greedy, "tool-use": tool_use, "arena": arena, "gains": gains,
             "matched": matched, "consensus": consensus, "choices": choices, "star": star}
    if len(sys.argv) not in (2, 3, 4) or sys.argv[1] not in reads:
        sys.exit(f"usage: python benchmarks/reads.py {{{'|'.join(reads)}}} [FILE [BASE]]")
    reads[sys.argv[1]](*sys.argv[2:])  # type: ignore[operator]
