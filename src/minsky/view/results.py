"""Results files the viewer shows: an evaluation, an arena or an economy, read as written.

The numbers come from the code that produced them in the terminal: `evaluate.summarise`
(Wilson intervals, paired McNemar tests), `arena.leaderboard` (Bradley–Terry with
bootstrap intervals, Elo, flips, biases) and `stats.wilson_interval`; the economy's
wealth over time is its ledger replayed entry by entry, as `minsky economy audit` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from minsky.errors import MinskyError
from minsky.inputs.records import jsonl_objects

Kind = Literal["eval", "arena", "economy"]
ARENA_KINDS = {"answer", "judgment"}
ECONOMY_KINDS = {"entry", "task", "audit", "ruling"}


@dataclass(frozen=True)
class ResultsFile:
    path: Path
    kind: Kind

    @property
    def title(self) -> str:
        return f"{self.kind}: {self.path.name}"


def detect(path: Path) -> ResultsFile:
    """What kind of results `path` holds, from its rows; a clear error when none."""
    rows = jsonl_objects(path, "results file")
    if not rows:
        raise MinskyError(f"results file {path} is empty")
    kinds = {row.get("kind") for _, row in rows if isinstance(row, dict)}
    first = rows[0][1]
    if not isinstance(first, dict):
        raise MinskyError(f"{path}:1: expected a JSON object")
    if "case" in first and "society" in first:
        return ResultsFile(path, "eval")
    if kinds and kinds <= ARENA_KINDS:
        return ResultsFile(path, "arena")
    if kinds and kinds <= ECONOMY_KINDS:
        return ResultsFile(path, "economy")
    raise MinskyError(f"{path}: not an eval, arena or economy results file (expected rows "
                      "with 'case' and 'society', or 'kind' answer/judgment or entry/task)")


def read(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in jsonl_objects(path, "results file") if isinstance(row, dict)]


def evaluation(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`minsky eval`'s summary of a results file, and its case × society matrix."""
    from minsky.evals.harness import summarise

    cases = [r for r in rows if "case" in r and "society" in r]
    names = list(dict.fromkeys(r["society"] for r in cases))
    summary = summarise(cases, names)
    cell = {(r["case"], r["society"]): r for r in cases}
    case_ids = list(dict.fromkeys(r["case"] for r in cases))
    return {"summary": summary, "societies": names, "cases": case_ids, "cell": cell}


def matrix_rows(data: dict[str, Any], a: str, b: str) -> list[str]:
    """Case ids, only those society `a` got right and `b` wrong when both are given."""
    if not (a and b):
        return list(data["cases"])
    cell = data["cell"]

    def right(case: str, society: str) -> bool | None:
        row = cell.get((case, society))
        return None if row is None else bool(row["correct"])

    return [c for c in data["cases"] if right(c, a) is True and right(c, b) is False]


def failed(row: dict[str, Any]) -> bool:
    """Whether the row's run failed (an error, a timeout): not a wrong answer."""
    from minsky.results import FAILED

    return row.get("status") in FAILED


def errored(data: dict[str, Any]) -> int:
    """How many cells of the matrix are failed runs."""
    return sum(failed(row) for row in data["cell"].values())


def sort_cases(data: dict[str, Any], cases: list[str], questions: dict[str, str],
               by: str, descending: bool) -> list[str]:
    """`cases` ordered by the case id (file order), the question, the gold answer, how
    many societies got it right, or one society's mark (right, wrong, failed, missing)."""
    cell, societies = data["cell"], data["societies"]
    if by == "case":
        return list(reversed(cases)) if descending else list(cases)

    def key(case: str) -> Any:
        if by == "question":
            return questions.get(case, "").casefold()
        if by == "gold":
            first: dict[str, Any] = next(
                (cell[(case, s)] for s in societies if (case, s) in cell), {})
            return str(first.get("gold", ""))
        if by == "right":
            return sum(bool(cell[(case, s)].get("correct")) for s in societies
                       if (case, s) in cell)
        row = cell.get((case, by))
        return 3 if row is None else 2 if failed(row) else 0 if row.get("correct") else 1

    return sorted(cases, key=key, reverse=descending)  # stable: ties keep the file order


def arena(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`minsky arena`'s leaderboard, and every pair's verdicts in both orders."""
    from minsky.evals.arena import leaderboard
    from minsky.organisations.judging import combine

    board = leaderboard(rows)
    answers = {(r["prompt"], r["contestant"]): r for r in rows if r.get("kind") == "answer"}
    verdicts = {(r["prompt"], r["a"], r["b"]): r for r in rows if r.get("kind") == "judgment"}
    pairs = []
    for (pid, a, b), ab in sorted(verdicts.items()):
        ba = verdicts.get((pid, b, a))
        if a > b or ba is None:
            continue
        score, flipped = combine(ab["verdict"], ba["verdict"])
        pairs.append({"prompt": pid, "a": a, "b": b, "ab": ab, "ba": ba, "score": score,
                      "flipped": flipped, "answer_a": answers.get((pid, a)),
                      "answer_b": answers.get((pid, b))})
    return {"board": board, "pairs": pairs}


def economy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Wealth after every task per member, births, bankruptcies, generations, rulings."""
    from minsky.evals.stats import wilson_interval

    balance: dict[str, int] = {}
    gone: set[str] = set()
    tasks: list[dict[str, Any]] = []
    series: dict[str, list[tuple[float, float]]] = {}
    total: list[tuple[float, float]] = []
    events: list[tuple[float, str]] = []
    for row in rows:
        if row.get("kind") == "entry":
            e = row["entry"]
            # the environment, the burn and escrow are not members: money passes through
            for name, delta in ((e["src"], -e["amount"]), (e["dst"], e["amount"])):
                if not name.startswith("@"):
                    balance[name] = balance.get(name, 0) + delta
        elif row.get("kind") == "task":
            n = len(tasks) + 1
            gone.update(row.get("bankrupt") or [])
            tasks.append(row)
            for name, cents in balance.items():
                if name not in gone:
                    series.setdefault(name, []).append((n, cents))
            total.append((n, sum(balance.values())))
            events += [(n, f"born {k}") for k in row.get("born") or []]
            events += [(n, f"bankrupt {k}") for k in row.get("bankrupt") or []]
    generations = []
    for g in sorted({t["generation"] for t in tasks}):
        mine = [t for t in tasks if t["generation"] == g]
        right = sum(bool(t["correct"]) for t in mine)
        low, high = wilson_interval(right, len(mine))
        generations.append({"generation": g, "tasks": len(mine), "correct": right,
                            "accuracy": right / len(mine), "ci_low": low, "ci_high": high,
                            # after the generation's last task: its bankrupt gone, its born in
                            "members": len(mine[-1]["members"])
                            - len(mine[-1].get("bankrupt") or []) + len(mine[-1].get("born") or []),
                            "born": [k for t in mine for k in t.get("born") or []],
                            "bankrupt": [k for t in mine for k in t.get("bankrupt") or []]})
    audit = next((r for r in rows if r.get("kind") == "audit"), None)
    return {"tasks": tasks, "series": series, "total": total, "events": events,
            "generations": generations, "audit": audit, "final": balance,
            "rulings": [r for r in rows if r.get("kind") == "ruling"],
            "economy": any(r.get("kind") == "task" and "paid" in r for r in rows)}


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
