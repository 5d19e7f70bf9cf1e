"""The compute frontier: accuracy against tokens per problem, for every method (issue 15).

Two panels. Left, the reporting sample: each society of a `minsky eval` results file
(its mean prompt + completion tokens per case, and its accuracy with a 95 % Wilson
interval). Right, the tuning sample: sampling methods at several sizes, each one the
`consensus` organisation itself driven over the tuning pool (`benchmarks/pool_rules.py`):
chain-of-thought votes, program votes, and mixed votes, so the curves show what each
extra sample buys.

    python benchmarks/frontier.py --eval benchmarks/results/eval-gsm8k200.jsonl \\
        --pool benchmarks/results/pool-gsm8k-tune.jsonl --out docs/frontier-gsm8k.png
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
from pool_rules import simulate  # noqa: E402

from minsky.evals.stats import wilson_interval  # noqa: E402

Plan = list[tuple[str, str, int]]


def eval_points(path: Path) -> dict[str, tuple[float, float, float, float, int]]:
    """society → (tokens per case, accuracy, low, high, n), each on the cases it answered
    (a society run on a prefix of the sample has a smaller n, shown in its label)."""
    rows: dict[str, dict[str, dict[str, object]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if "case" in r:
            rows[str(r["society"])][str(r["case"])] = r
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


def pool_curves(pool: Path) -> dict[str, list[tuple[float, float]]]:
    cot = ("reasoner", "cot-greedy", 0)
    pot = ("programmer", "pot-greedy", 0)
    cots = [("reasoner", "cot-0.7", i) for i in range(3)] + [("reasoner", "cot-0.3", i)
                                                             for i in range(3)]
    pots = [("programmer", "pot-0.8", i) for i in range(6)] + [("programmer", "pot-0.5", i)
                                                               for i in range(6)]
    plans: dict[str, list[Plan]] = {
        "chain-of-thought vote (greedy + samples)": [[cot, *cots[:k]] for k in range(7)],
        "program vote (greedy + samples)": [[pot, *pots[:k]] for k in range(13)],
        "mixed: greedy CoT + programs": [[cot, pot, *pots[:k]] for k in range(0, 13, 2)],
    }
    curves = {}
    for name, sizes in plans.items():
        points = []
        for plan in sizes:
            acc, tokens, _, _ = simulate(pool, plan, {"cross_check": 0.5})
            points.append((tokens, acc))
        curves[name] = points
    return curves


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--pool", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for society, (tokens, acc, low, high, n) in sorted(eval_points(args.eval).items()):
        left.errorbar([tokens], [acc], yerr=[[acc - low], [high - acc]], fmt="o", capsize=3,
                      label=f"{society} ({acc:.0%}, n = {n})")
        print(f"{society:12} n={n} accuracy {acc:.1%} [{low:.1%}, {high:.1%}] "
              f"tokens/problem {tokens:.0f}")
    left.set_title(f"reporting sample (seed 0): {args.eval.name}")
    for name, points in pool_curves(args.pool).items():
        right.plot([t for t, _ in points], [a for _, a in points], "o-", label=name)
        print(name, " ".join(f"{t:.0f}:{a:.1%}" for t, a in points))
    right.set_title(f"tuning sample: {args.pool.name}")
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
