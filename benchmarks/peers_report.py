"""The tables and frontier plots of `benchmarks/peers.py` (issue 27).

Every setup is read on the same cases (`minsky eval --limit 100 --seed 0` of the bench,
which for GSM8K-train and ARC-Challenge is a subset of the 200-case reporting sample), a
failed run left out (counted apart, never a wrong answer), the last row of a case
counting. Per setup:

- accuracy with a 95 % Wilson interval, and McNemar against the default society on the
  cases both answered;
- tokens and calls per question: for minsky's setups from their own rows; for optillm's
  approaches from the model server itself (the metering proxy's log, each call
  attributed to the question in flight: they are asked one at a time), since optillm's
  `usage` counts completion tokens only;
- seconds per question on the quiet machine: for optillm's approaches the busy time of
  their rows over their questions (one at a time); for minsky's setups the busy time of
  the evaluation the rows come from, over all its cases (four in flight, as minsky runs
  them) — the pace of that run, not of a subset of its interleaved rows.
"""

from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from peers import APPROACHES, BENCHES, CASES, MODEL, OUT, RESULTS  # noqa: E402
from ulid import ULID  # noqa: E402

from minsky.evals.benchmarks import load_benchmark  # noqa: E402
from minsky.evals.harness import busy_seconds  # noqa: E402
from minsky.evals.stats import mcnemar, wilson_interval  # noqa: E402
from minsky.results import FAILED  # noqa: E402

REFERENCE = "consensus"
# (label, results file, society name in it, family); optillm's approaches are added
MINSKY = {
    "gsm8k": [
        ("single", RESULTS / "eval-gsm8k200.jsonl", "single", "minsky 0.5B"),
        ("vote5", RESULTS / "eval-gsm8k200.jsonl", "vote5", "minsky 0.5B"),
        ("vote@10", RESULTS / "eval-gsm8k200.jsonl", "vote@10", "minsky 0.5B"),
        ("consensus", RESULTS / "eval-gsm8k200.jsonl", "consensus", "minsky 0.5B"),
        ("cascade", RESULTS / "eval-gsm8k200.jsonl", "cascade", "minsky 0.5B + 1.5B"),
        ("single-1.5b", RESULTS / "eval-gsm8k200.jsonl", "single-1.5b", "1.5B"),
        ("consensus-1.5b", OUT / "gsm8k100-1.5b.jsonl", "consensus", "1.5B"),
        # the same societies again on this machine on 7 December: batched decoding ran
        # slower than on 1 December, a single sequence did not (docs/peers.md)
        ("consensus, 7 Dec", OUT / "calibration-consensus.jsonl", "consensus", "minsky 0.5B"),
        ("single, 7 Dec", OUT / "calibration-single.jsonl", "single", "minsky 0.5B"),
    ],
    "arc": [
        ("single", RESULTS / "eval-arc200.jsonl", "single", "minsky 0.5B"),
        ("consensus", RESULTS / "eval-arc200.jsonl", "consensus", "minsky 0.5B"),
        ("single-1.5b", RESULTS / "eval-arc200.jsonl", "single-1.5b", "1.5B"),
    ],
}
# further paired comparisons: the 1.5B society against its member alone (the goal's
# +8 points), and optillm's pass-through against minsky's `single` (the same request)
PAIRS = [("consensus-1.5b", "single-1.5b"), ("optillm none", "single")]
COLOURS = {"optillm": "tab:orange", "minsky 0.5B": "tab:blue",
           "minsky 0.5B + 1.5B": "tab:purple", "1.5B": "tab:green"}


@dataclass
class Point:
    label: str
    family: str
    n: int
    correct: int
    failed: int
    tokens: float  # per question
    calls: float
    seconds: float
    by_case: dict[str, bool]

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


def rows_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def upstream_calls() -> tuple[list[float], list[dict[str, Any]]]:
    calls = sorted(rows_of(OUT / "upstream-calls.jsonl"), key=lambda c: c["t"])
    return [c["t"] for c in calls], calls


def attributed(row: dict[str, Any], times: list[float],
               calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server calls made while this question was in flight."""
    start = ULID.from_str(row["run_id"]).timestamp
    lo = bisect.bisect_left(times, start)
    hi = bisect.bisect_right(times, start + row["wall_s"])
    return calls[lo:hi]


def point(label: str, family: str, rows: list[dict[str, Any]], society: str,
          ids: set[str], pace: float | None,
          upstream: tuple[list[float], list[dict[str, Any]]] | None) -> Point | None:
    last = {r["case"]: r for r in rows if r.get("society") == society and r.get("case") in ids}
    ok = {c: r for c, r in last.items() if r.get("status") not in FAILED}
    if not ok:
        return None
    n = len(ok)
    if upstream is not None:
        made = [attributed(r, *upstream) for r in ok.values()]
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for m in made for c in m) / n
        calls = sum(len(m) for m in made) / n
        seconds = busy_seconds(list(ok.values())) / n
    else:
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in ok.values()) / n
        calls = sum(r.get("calls", 0) for r in ok.values()) / n
        seconds = pace if pace is not None else busy_seconds(list(ok.values())) / n
    return Point(label, family, n, sum(bool(r["correct"]) for r in ok.values()),
                 len(last) - n, tokens, calls, seconds,
                 {c: bool(r["correct"]) for c, r in ok.items()})


def points(bench: str) -> list[Point]:
    ids = {c.id for c in load_benchmark(BENCHES[bench], CASES, 0)}
    out: list[Point] = []
    upstream = upstream_calls()
    peer_rows = rows_of(OUT / f"{bench}{CASES}-optillm.jsonl")
    for approach in APPROACHES[bench]:
        p = point(f"optillm {approach}", "optillm", peer_rows, f"{approach}-{MODEL}", ids,
                  None, upstream)
        if p:
            out.append(p)
    for label, path, society, family in MINSKY[bench]:
        rows = rows_of(path)
        # the pace of the run the rows come from: its busy time over all its cases
        mine = list({r["case"]: r for r in rows if r.get("society") == society
                     and "case" in r and r.get("status") not in FAILED}.values())
        pace = busy_seconds(mine) / len(mine) if mine else None
        p = point(label, family, rows, society, ids, pace, None)
        if p:
            out.append(p)
    return out


def dominated(p: Point, every: list[Point], axis: str) -> bool:
    """Another setup is at least as good on both and better on one (cost on `axis`)."""
    cost = getattr(p, axis)
    return any(q is not p and getattr(q, axis) <= cost and q.accuracy >= p.accuracy
               and (getattr(q, axis) < cost or q.accuracy > p.accuracy) for q in every)


def table(bench: str, pts: list[Point]) -> str:
    ref = next((p for p in pts if p.label == REFERENCE), None)
    lines = [f"| setup | n | accuracy | 95 % Wilson CI | tokens / question | calls / question "
             f"| s / question | minutes in all | vs {REFERENCE}: only this / only "
             f"{REFERENCE}, McNemar p (cases) | dominated (s, tokens) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(pts, key=lambda p: -p.accuracy):
        low, high = wilson_interval(p.correct, p.n)
        versus = ""
        if ref is not None and p is not ref:
            shared = sorted(set(p.by_case) & set(ref.by_case))
            test = mcnemar([p.by_case[c] for c in shared], [ref.by_case[c] for c in shared])
            versus = f"{test.b10} / {test.b01}, p = {test.p_value:.2g} ({len(shared)})"
        flags = "/".join("yes" if dominated(p, pts, axis) else "no"
                         for axis in ("seconds", "tokens"))
        failed = f" ({p.failed} failed)" if p.failed else ""
        lines.append(f"| {p.label} | {p.n}{failed} | {p.accuracy:.1%} | {low:.1%}–{high:.1%} "
                     f"| {p.tokens:,.0f} | {p.calls:.1f} | {p.seconds:.1f} "
                     f"| {p.seconds * p.n / 60:.1f} | {versus} | {flags} |")
    return "\n".join(lines)


def pairs(pts: list[Point]) -> str:
    by = {p.label: p for p in pts}
    lines = ["| pair | cases | accuracy a / b | only a / only b | McNemar p |",
             "|---|---|---|---|---|"]
    for a, b in PAIRS:
        if a not in by or b not in by:
            continue
        shared = sorted(set(by[a].by_case) & set(by[b].by_case))
        x = [by[a].by_case[c] for c in shared]
        y = [by[b].by_case[c] for c in shared]
        test = mcnemar(x, y)
        lines.append(f"| {a} vs {b} | {len(shared)} | {sum(x) / len(x):.1%} / "
                     f"{sum(y) / len(y):.1%} | {test.b10} / {test.b01} | {test.p_value:.2g} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def plot(bench: str, pts: list[Point], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, axis, name in ((axes[0], "seconds", "seconds per question (2 CPU cores)"),
                           (axes[1], "tokens", "tokens per question (prompt + completion)")):
        front = sorted((p for p in pts if not dominated(p, pts, axis)),
                       key=lambda p: getattr(p, axis))
        ax.plot([getattr(p, axis) for p in front], [p.accuracy for p in front], "-",
                color="grey", alpha=0.5, zorder=1, label="frontier (not dominated)")
        placed: list[tuple[float, float]] = []
        for p in pts:
            x = getattr(p, axis)
            # labels of points that (nearly) coincide are stacked, not printed over each other
            near = sum(1 for px, py in placed
                       if abs(math.log10(px / x)) < 0.3 and abs(py - p.accuracy) < 0.03)
            placed.append((x, p.accuracy))
            low, high = wilson_interval(p.correct, p.n)
            hollow = dominated(p, pts, axis)
            colour = COLOURS[p.family]
            ax.errorbar(getattr(p, axis), p.accuracy,
                        yerr=[[p.accuracy - low], [high - p.accuracy]], fmt="o",
                        color=colour, mfc="white" if hollow else colour, ms=7, capsize=2,
                        alpha=0.85, zorder=2)
            ax.annotate(f"{p.label} ({p.n})", (x, p.accuracy), textcoords="offset points",
                        xytext=(5, 4 - 9 * near), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        # minor ticks labelled at 2 and 5 of each decade only: all nine overlap
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
        ax.set_xlabel(name)
        ax.set_ylabel("accuracy (95 % Wilson interval)")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f)
               for f, c in COLOURS.items() if any(p.family == f for p in pts)]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="grey", mfc="white",
                              label="dominated (hollow)"))
    axes[0].legend(handles=handles, fontsize=8, loc="upper left")
    fig.suptitle(f"{bench}: the first {CASES} of the seed-0 sample, Qwen2.5-Coder on 2 "
                 "CPU cores (n per setup in brackets)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(plot_dir: Path) -> None:
    for bench in BENCHES:
        pts = points(bench)
        if not pts:
            continue
        print(f"\n### {bench}\n")
        print(table(bench, pts))
        if paired := pairs(pts):
            print("\n" + paired)
        path = plot_dir / f"peers-{bench}.png"
        plot(bench, pts, path)
        print(f"\n![{bench} frontier]({path.name})")
    calls = rows_of(OUT / "upstream-calls.jsonl")
    by = defaultdict(lambda: [0, 0])
    for c in calls:
        by[c["label"]][0] += 1
        by[c["label"]][1] += c.get("finish_reason") == "length"
    print("\nServer calls cut by their token cap (finish_reason `length`):\n")
    for label, (n, cut) in sorted(by.items()):
        print(f"- {label}: {cut} of {n}")
