"""The compute frontier: accuracy against tokens per problem, for every method (issue 15).

Two panels. Left, the reporting sample: each society of a `minsky eval` results file
(its mean prompt + completion tokens per case, and its accuracy with a 95 % Wilson
interval). Right, the tuning sample: sampling methods at several sizes, each one the
`consensus` organisation itself driven over the tuning pool (`benchmarks/pool_rules.py`):
chain-of-thought votes, program votes, and mixed votes, so the curves show what each
extra sample buys.

    python benchmarks/frontier.py --eval benchmarks/results/eval-gsm8k200.jsonl \\
        --pool benchmarks/results/pool-gsm8k-tune.jsonl \\
        --pool benchmarks/results/pool-gsm8k-tune150.jsonl \\
        --trained benchmarks/results/eval-gsm8k200-star-r1.jsonl --out docs/frontier-gsm8k.png

`--trained FILE` adds the societies of another evaluation of the same sample on a trained
member (STaR, issue 26) as squares, labelled with the file's adapter tag.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from pool_rules import DEFAULT_PLAN, default_params, questions, simulate  # noqa: E402

from minsky.evals.harness import vote_prefixes  # noqa: E402
from minsky.evals.stats import wilson_interval  # noqa: E402
from minsky.results import FAILED  # noqa: E402

Plan = list[tuple[str, str, int]]


def eval_points(path: Path) -> dict[str, tuple[float, float, float, float, int]]:
    """society → (tokens per case, accuracy, low, high, n), each on the cases it answered
    (a society run on a prefix of the sample has a smaller n, shown in its label)."""
    rows: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        # a failed run is no answer (a rerun retries it; the last row of a case counts)
        if "case" in r:
            rows[str(r["society"])][str(r["case"])] = r
    for by_case in rows.values():
        for case in [c for c, r in by_case.items()
                     if r.get("status") in FAILED]:
            del by_case[case]
    out = {}
    for society, by_case in rows.items():
        picked = list(by_case.values())
        n = len(picked)
        right = sum(bool(r["correct"]) for r in picked)
        tokens = sum(int(r["prompt_tokens"]) + int(r["completion_tokens"])  # type: ignore[call-overload]
                     for r in picked) / n
        low, high = wilson_interval(right, n)
        out[society] = (tokens, right / n, low, high, n)
    return out


def prefix_curves(path: Path) -> dict[str, list[tuple[float, float]]]:
    """For each plain vote of more than five members in the results (vote@10 of
    `--matched`): the vote of its first k members, k = 1 … all, on the same cases — the
    plain vote at every compute up to its own, read off its rows, no model run."""
    rows = [r for line in path.read_text().splitlines() if "case" in (r := json.loads(line))]
    sizes: dict[str, int] = {}
    for r in rows:
        if "votes" in r and len(r["votes"]) > 5:
            sizes[r["society"]] = len(r["votes"])
    curves = {}
    for name, size in sizes.items():
        derived = vote_prefixes(rows, name, range(1, size + 1))
        points = []
        for k in range(1, size + 1):
            picked = [r for r in derived if r["society"] == f"{name}[:{k}]"]
            tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in picked)
            points.append((tokens / len(picked), sum(r["correct"] for r in picked) / len(picked)))
        curves[f"{name}[:k], k = 1 … {size} (n = {len(picked)})"] = points
    return curves


def pool_curves(pool: Path, asked: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """Curves for the arms this pool holds: a vote over the first k samples of a method."""
    arms = {json.loads(line)["arm"] for line in pool.read_text().splitlines()}
    cot = ("reasoner", "cot-greedy", 0)
    pot = ("programmer", "pot-greedy", 0)
    pots = [("programmer", f"pot-{t}", i) for t in ("0.8", "0.5") if f"pot-{t}" in arms
            for i in range(6)]
    plans: dict[str, tuple[list[Plan], dict[str, object]]] = {}
    if {"cot-0.7", "cot-0.3"} <= arms:
        cots = [("reasoner", f"cot-{t}", i) for t in ("0.7", "0.3") for i in range(3)]
        plans["chain-of-thought vote (greedy + samples)"] = (
            [[cot, *cots[:k]] for k in range(7)], {})
    plans["program vote (greedy + samples)"] = (
        [[pot, *pots[:k]] for k in range(len(pots) + 1)], {"cross_check": 0.5})
    plans["greedy CoT + programs"] = (
        [[cot, pot, *pots[:k]] for k in range(0, len(pots) + 1, 2)], {"cross_check": 0.5})
    if "pot1-0.8" in arms:
        # the built-in default's members in order, with its own rules and without them
        rules = default_params()
        plans["consensus.toml, first k members"] = (
            [DEFAULT_PLAN[:k] for k in range(1, len(DEFAULT_PLAN) + 1)], rules)
        plans["the same without its three weighing rules"] = (
            [DEFAULT_PLAN[:k] for k in range(1, len(DEFAULT_PLAN) + 1)],
            {**rules, "unused_quantity": 1.0, "not_whole": 1.0, "confidence": "none"})
    curves = {}
    for name, (sizes, params) in plans.items():
        points = []
        for plan in sizes:
            acc, tokens, _, _ = simulate(pool, plan, params, asked=asked)
            points.append((tokens, acc))
        curves[name] = points
    return curves


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--pool", type=Path, required=True, action="append",
                    help="a tuning pool (benchmarks/pool.py); repeat for several")
    ap.add_argument("--trained", type=Path, action="append", default=[],
                    help="an evaluation of the same sample on a trained member (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for society, (tokens, acc, low, high, n) in sorted(eval_points(args.eval).items()):
        left.errorbar([tokens], [acc], yerr=[[acc - low], [high - acc]], fmt="o", capsize=3,
                      label=f"{society} ({acc:.0%}, n = {n})")
        print(f"{society:12} n={n} accuracy {acc:.1%} [{low:.1%}, {high:.1%}] "
              f"tokens/problem {tokens:.0f}")
    for trained in args.trained:
        tag = trained.stem.rsplit("-", 1)[-1]  # eval-gsm8k200-star-r1 → r1
        for society, (tokens, acc, low, high, n) in sorted(eval_points(trained).items()):
            left.errorbar([tokens], [acc], yerr=[[acc - low], [high - acc]], fmt="s",
                          capsize=3, label=f"{society} STaR {tag} ({acc:.0%}, n = {n})")
            print(f"{society + ' ' + tag:12} n={n} accuracy {acc:.1%} [{low:.1%}, "
                  f"{high:.1%}] tokens/problem {tokens:.0f}")
    for name, points in prefix_curves(args.eval).items():
        left.plot([t for t, _ in points], [a for _, a in points], ".--", color="grey",
                  label=name)
        print(name, " ".join(f"{t:.0f}:{a:.1%}" for t, a in points))
    left.set_title(f"reporting sample (seed 0): {args.eval.name}")
    asked = questions("gsm8k")
    for pool in args.pool:
        for name, points in pool_curves(pool, asked).items():
            label = f"{name} [{pool.stem.removeprefix('pool-gsm8k-')}]"
            right.plot([t for t, _ in points], [a for _, a in points], "o-", label=label)
            print(label, " ".join(f"{t:.0f}:{a:.1%}" for t, a in points))
    right.set_title("tuning samples: " + ", ".join(p.name for p in args.pool))
    for ax in (left, right):
        ax.set_xlabel("tokens per problem (prompt + completion)")
        ax.set_ylabel("accuracy")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
