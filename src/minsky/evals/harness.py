"""Evaluation: societies on the same benchmark cases, with intervals and paired tests.

Every society answers every case (several cases at once, on shared backends); one JSON
line per finished case is appended to the results file, so a killed evaluation loses
nothing and rerunning it skips what is done. The summary gives each society's accuracy
with a 95 % Wilson interval, its tokens and time, and for every society after the
first a paired exact McNemar test against the first, on the cases both answered.

Compute-matched baselines ("More Agents Is All You Need" asks for them): a society that
makes c model calls per case is also compared with `vote` over c samples — the same
agent and sampling as the built-in `vote5` — on the same cases. When the evaluation
also runs a vote of at least c members of that agent (vote9), the baseline is its first
c members (`prefix_source`), not a second sampling of the same thing.

Scaling curves without rerunning: a `vote` society's rows keep every member's answer and
tokens in member order, so `vote_prefixes` can score the vote of its first k members for
any k. With seeds base+0, base+1, … the first k members of `vote9` are configured exactly
as the members of a k-member vote (same role, sampling settings and seeds), so vote@1/3/5
come from one vote9 run at no extra cost. They are the same vote, not the same samples:
llama.cpp's numerics depend on which sequences share a batch, so a separate vote5 run
draws different texts from the same seeds.

What an evaluation runs and reports is data: a `Plan` of the societies to run, the
prefixes to read off their votes and the compute-matched pairs, each line of the
summary an `Entry` (a society and its k). `minsky eval` builds it and runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ulid import ULID

from minsky.answers import answers_match, tally_votes
from minsky.errors import MinskyError
from minsky.evals.formats import score
from minsky.evals.stats import mcnemar, wilson_interval
from minsky.plugin_api import Case
from minsky.results import (
    FAILED,
    Item,
    Results,
    open_results,
    read_rows,
    run_many,
)
from minsky.runner import Runner, RunResult
from minsky.society import Society, from_dict, load


def done_keys(out: Path) -> set[tuple[str, str]]:
    """(society, case id) pairs already in a results file."""
    return {(r["society"], r["case"]) for r in read_rows(out) if "case" in r}


async def evaluate_society(
    runner: Runner,
    society: Society,
    cases: Sequence[Case],
    out: Path,
    concurrency: int = 4,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    bench: str | None = None,
    results: Results | None = None,
    retry_errors: bool = True,
) -> None:
    """Answer every case of `cases` not yet in `out` with `society` (`minsky.results`:
    rows made with other settings, or for another question under the same id, stop it);
    `bench` names the benchmark in each row. Pass `results` (`out` already open) to keep
    one lock over several societies. A case whose run failed is run again unless
    `retry_errors` is off."""
    names = [m.name for m in society.agents]

    def describe(item: Item, result: RunResult) -> dict[str, Any]:
        case: Case = item.data
        row: dict[str, Any] = {
            "case": case.id, "society": society.name, "answer": result.answer,
            "gold": case.answer, "correct": score(case, result.answer),
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "calls": sum(len(r.turns) for r in result.rounds),
            "wall_s": round(result.wall_s, 3), "status": result.status,
            "run_id": result.run_id,
        }
        if society.config.organisation == "vote":
            row["kind"] = case.kind
            row["votes"] = [m.answer for m in result.outcome.members]
            row["member_tokens"] = _member_tokens(result, names)
        if bench is not None:
            row["bench"] = bench
        return row

    items = [Item(c.id, c.question, c.kind, c.answer, data=c) for c in cases]

    def key(row: dict[str, Any]) -> str | None:
        return row["case"] if row.get("society") == society.name and "case" in row else None

    if results is not None:
        await run_many(runner, society, items, results, key, describe, concurrency, on_row,
                       retry_failed=retry_errors)
        return
    with open_results(out) as opened:
        await run_many(runner, society, items, opened, key, describe, concurrency, on_row,
                       retry_failed=retry_errors)


def busy_seconds(rows: Sequence[dict[str, Any]]) -> float:
    """Seconds in which at least one of these finished runs was in flight.

    A run id is a ULID, which records when the run started, and a row has the run's
    duration; the union of those intervals is a society's wall time over every resumed
    segment, a segment killed with Ctrl-C counting up to its last finished case. A row
    without a run id (no run log) counts its own duration.
    """
    spans = sorted((ULID.from_str(r["run_id"]).timestamp, r["wall_s"])
                   for r in rows if r.get("run_id"))
    total = sum(r["wall_s"] for r in rows if not r.get("run_id"))
    begin = end = 0.0
    for start, wall in spans:
        if start > end:  # a gap: close the busy stretch so far, open a new one
            total += end - begin
            begin = start
        end = max(end, start + wall)
    return total + end - begin


def _member_tokens(result: Any, names: Sequence[str]) -> list[list[int]]:
    """[prompt, completion] tokens each member spent in a run, in member order."""
    spent = {n: [0, 0] for n in names}
    for record in result.rounds:
        for turn in record.turns:
            if turn["agent"] in spent:
                spent[turn["agent"]][0] += turn["prompt_tokens"]
                spent[turn["agent"]][1] += turn["completion_tokens"]
    return list(spent.values())


def vote_prefixes(rows: Sequence[dict[str, Any]], name: str,
                  ks: Sequence[int]) -> list[dict[str, Any]]:
    """Rows of `name[:k]`: the vote of the first k members of each `name` case (the same
    plurality and tie rule as `vote`), with those members' tokens and k calls."""
    derived = []
    for row in rows:
        if row.get("society") != name or "votes" not in row:
            continue
        for k in ks:
            if not 1 <= k <= len(row["votes"]):
                raise MinskyError(f"--prefixes {k}: {name} has {len(row['votes'])} members")
            winner = tally_votes(row["votes"][:k], row["kind"]).winner
            derived.append({
                "case": row["case"], "society": f"{name}[:{k}]", "answer": winner,
                "gold": row["gold"],
                "correct": winner is not None and answers_match(row["gold"], winner,
                                                                row["kind"]),
                "prompt_tokens": sum(t[0] for t in row["member_tokens"][:k]),
                "completion_tokens": sum(t[1] for t in row["member_tokens"][:k]),
                "calls": k, "derived": True,
                # a failed run of the whole vote fails its prefixes too: counted apart
                **({"status": row["status"]} if "status" in row else {}),
            })
    return derived


def matched_vote(calls: float, model: str | None = None, template: str = "vote5") -> Society:
    """`vote` with as many samples as `calls` (rounded, at least 1), named vote@N, on
    `model` (the compared society's)."""
    base = load(template, model)
    n = max(1, round(calls))
    agents = [a.model_copy(update={"count": n}) for a in base.config.agents]
    config = base.config.model_copy(update={"name": f"vote@{n}", "agents": agents})
    society = from_dict(config.model_dump(), f"matched to {n} calls", model)
    return replace(society, source=base.source)


def prefix_source(baseline: Society, societies: Sequence[Society]) -> Society | None:
    """A `vote` society among `societies` whose first members are exactly `baseline`'s
    (same role, model, options and tools, member by member), so `baseline` can be read
    off its rows as a prefix instead of being run again; None when there is none."""

    def sampling(agents: Sequence[Any]) -> list[tuple[Any, ...]]:
        # names differ (solver vs solver-1) and do not reach the model; the rest does
        return [(a.role, a.model, a.options, a.tools, a.society) for a in agents]

    want = sampling(baseline.agents)
    for society in societies:
        if (society.config.organisation == "vote" and len(society.agents) >= len(want)
                and sampling(society.agents[: len(want)]) == want):
            return society
    return None


@dataclass(frozen=True)
class Entry:
    """One line of an evaluation's summary: `society` run in full (`k` is its member
    count), or the vote of its first `k` members, read off its rows (`society[:k]`)."""

    society: Society
    k: int

    @property
    def whole(self) -> bool:
        return self.k == len(self.society.agents)

    @property
    def name(self) -> str:
        return self.society.name if self.whole else f"{self.society.name}[:{self.k}]"


@dataclass
class Plan:
    """What an evaluation runs and what it reports, in order: the societies to run
    (`runs`: those `given`, and with `matched` each compute-matched vote after the
    society it matches), the vote prefixes read off their rows (`prefixes`: a society's
    name → its k's) and the (compute-matched vote, society) pairs to test. A matched
    vote runs on `model`, else on the matched society's own model."""

    given: tuple[Society, ...]
    matched: bool = False
    model: str | None = None
    runs: list[Society] = field(default_factory=list)
    prefixes: dict[str, set[int]] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runs = self.runs or list(self.given)

    @classmethod
    def of(cls, societies: Sequence[Society], ks: Sequence[int] = (), matched: bool = False,
           model: str | None = None) -> Plan:
        """Run `societies`, and score each vote among them at its first k members for
        each k of `ks` (`--prefixes`) below its size; a k equal to a vote's size is that
        vote itself, a k above it is taken from a larger vote. With `matched`, compare
        each society with a vote of as many samples (`match`)."""
        votes = {s.name: len(s.agents) for s in societies if s.config.organisation == "vote"}
        if ks and not votes:
            raise MinskyError("--prefixes: no vote society to take prefixes of; add one "
                              "(e.g. --society vote9)")
        for k in ks:
            if not 1 <= k <= max(votes.values()):
                biggest = max(votes, key=lambda name: votes[name])
                raise MinskyError(f"--prefixes {k}: {biggest} has {votes[biggest]} members")
        return cls(tuple(societies), matched, model,
                   prefixes={name: {k for k in ks if k < size} for name, size in votes.items()})

    @property
    def entries(self) -> list[Entry]:
        """The summary's lines: each society run, after the prefixes read off it."""
        return [Entry(s, k) for s in self.runs
                for k in [*sorted(self.prefixes.get(s.name, ())), len(s.agents)]]

    def match(self, society: Society, rows: Sequence[dict[str, Any]]) -> Society | None:
        """With `matched`, plan the compute-matched vote of `society` (not a vote or a
        single), which has just run: `vote` with as many samples as it made calls a case
        in its answered rows among `rows` (this evaluation's cases). It is read off the
        first members of a given vote that samples exactly so (`prefix_source`);
        otherwise it is a society to run, placed after `society` and returned."""
        if not self.matched or society.config.organisation in ("vote", "single"):
            return None
        mine = [r for r in rows if r.get("society") == society.name
                and r.get("status") not in FAILED]
        calls = sum(r.get("calls", 0) for r in mine) / max(1, len(mine))
        own = next((a.model for a in society.agents if a.society is None), None)
        baseline = matched_vote(calls, self.model or own)
        source = prefix_source(baseline, self.given)
        if source is None:
            at = next(i for i, s in enumerate(self.runs) if s is society)
            self.runs.insert(at + 1, baseline)
            self.pairs.append((baseline.name, society.name))
            return baseline
        n = len(baseline.agents)
        if n < len(source.agents):
            self.prefixes.setdefault(source.name, set()).add(n)
        self.pairs.append((Entry(source, n).name, society.name))
        return None

    def derived_rows(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of every prefix in the plan, scored off its vote's `rows`."""
        return [r for name, ks in self.prefixes.items()
                for r in vote_prefixes(rows, name, sorted(ks))]


def summarise(rows: Sequence[dict[str, Any]], names: Sequence[str],
              matched: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Accuracy with Wilson intervals, tokens and time per society; paired tests of every
    society against the first, and of each (compute-matched vote, society) in `matched`.

    A society's `failed` counts its cases whose run failed; they are left out of `n` and
    accuracy. A society whose every case failed is kept, with `n` 0 and its measures None;
    the summary's `failed` is the total over the societies that ran (vote prefixes, read
    off a vote's rows, share its failures and are not counted twice)."""
    # the last row of a case counts (a failed run is retried by a rerun), and a failed
    # run is no answer at all: it is counted apart, never scored as a wrong answer
    last = {(r["society"], r["case"]): r for r in rows if "case" in r}
    cases = [r for r in last.values() if r.get("status") not in FAILED]
    results = []
    for name in names:
        mine = [r for r in cases if r["society"] == name]
        failed = sum(1 for (s, _), r in last.items() if s == name and r.get("status") in FAILED)
        if not mine:
            if failed:
                results.append(_all_failed(name, failed))
            continue
        n, right = len(mine), sum(bool(r["correct"]) for r in mine)
        low, high = wilson_interval(right, n)
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine)
        results.append({
            "society": name, "n": n, "correct": right, "accuracy": right / n,
            "ci_low": low, "ci_high": high, "total_tokens": tokens,
            "tokens_per_case": tokens / n,
            # rows converted from the retired benchmarks/organisations.py have no call count
            "calls_per_case": (sum(r["calls"] for r in mine) / n
                               if all("calls" in r for r in mine) else None),
            # a vote prefix took no time of its own: it was read off the full vote
            "wall_s": None if mine[0].get("derived") else round(busy_seconds(mine), 3),
            "failed": failed,
        })
    by_case = {(r["society"], r["case"]): bool(r["correct"]) for r in cases}

    def pair(a: str, b: str) -> dict[str, Any] | None:
        shared = sorted(c for s, c in by_case if s == a and (b, c) in by_case)
        if not shared:
            return None
        test = mcnemar([by_case[(a, c)] for c in shared], [by_case[(b, c)] for c in shared])
        return {"a": a, "b": b, "cases": len(shared), **test.to_dict()}

    firsts = [(results[0]["society"], r["society"]) for r in results[1:]]
    paired = [p for a, b in firsts if (p := pair(a, b))]
    out: dict[str, Any] = {"results": results, "paired": paired, "failed": sum(
        1 for (s, _), r in last.items()
        if s in names and r.get("status") in FAILED and not r.get("derived"))}
    if matched:
        out["matched"] = [p for a, b in matched if (p := pair(a, b))]
    return out


def _all_failed(name: str, failed: int) -> dict[str, Any]:
    """A society's summary when none of its cases was answered: every run failed."""
    return {"society": name, "n": 0, "correct": 0, "accuracy": None, "ci_low": None,
            "ci_high": None, "total_tokens": 0, "tokens_per_case": None,
            "calls_per_case": None, "wall_s": None, "failed": failed}


def plot_levels(societies: Sequence[Society]) -> dict[str, str]:
    """Name → model of each one-member society on a model the first society does not use.

    Such a society (single-1.5b beside votes of the 0.5B model) is a level for the curve
    to reach, not a point on it, so the plot draws it as a band across."""
    base = {a.model for a in societies[0].agents}
    return {s.name: s.agents[0].model for s in societies
            if len(s.agents) == 1 and s.agents[0].model not in base}


def plot_scaling(results: Sequence[dict[str, Any]], members: dict[str, int], path: Path,
                 title: str, levels: dict[str, str] | None = None) -> None:
    """Accuracy against the number of members or samples, with the Wilson intervals; a
    vote and its prefixes joined by a line; each society in `levels` (name → model) drawn
    as a horizontal band at its accuracy and interval. A society's failed cases are named
    beside it ("+2 errors"); one with no answered case has no point."""
    try:
        import matplotlib
    except ImportError:
        raise MinskyError("--plot needs matplotlib: pip install 'minsky[plot]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = levels or {}
    results = [r for r in results if r["n"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    curves: dict[str, list[tuple[float, float]]] = {}
    # each curve (a vote and its prefixes, or a lone society) a little to the side, so
    # points at the same sample count do not hide each other
    bases = list(dict.fromkeys(r["society"].split("[:")[0] for r in results
                               if r["society"] not in levels))
    for r in results:
        name, acc = r["society"], r["accuracy"]
        label = name + (f" (+{r['failed']} errors)" if r.get("failed") else "")
        if name in levels:
            line = ax.axhline(acc, linestyle="--", linewidth=1)
            ax.axhspan(r["ci_low"], r["ci_high"], color=line.get_color(), alpha=0.12)
            ax.annotate(f"{label} ({levels[name]})", (1, acc), xycoords=("axes fraction",
                        "data"), xytext=(-4, 4), textcoords="offset points", ha="right",
                        fontsize=8)
            continue
        base = name.split("[:")[0]
        x = members.get(name, 1) + 0.1 * (bases.index(base) - (len(bases) - 1) / 2)
        ax.errorbar([x], [acc], yerr=[[acc - r["ci_low"]], [r["ci_high"] - acc]],
                    fmt="o", capsize=4)
        ax.annotate(label, (x, acc), textcoords="offset points", xytext=(6, 4), fontsize=8)
        curves.setdefault(base, []).append((x, acc))
    for points in curves.values():
        if len(points) > 1:
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, color="grey", linewidth=1, zorder=0)
    ax.set_xlabel("members / samples per case")
    ax.set_ylabel("accuracy (95 % Wilson interval)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
