"""Fresh mining: a society answers benchmark cases, and its right replies are kept.

The society runs through the results engine (`minsky.results`), so a killed mining run
resumes where it stopped, and every call lands in the run log, where `mine.log_replies`
reads the member replies back. Rationalization (STaR's second pass): the problems that
no right program reached are asked again, to the society's programmers alone, with the
gold answer as a hint; a program that computes the hint is kept, marked `hinted`, as if
it had been asked without the hint. One that writes the hint as a literal the question
does not give is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.evals.harness import evaluate_society
from minsky.inputs.records import jsonl_rows
from minsky.plugin_api import Case
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import Society, from_dict
from minsky.star.mine import (
    Exclusion,
    MineStats,
    cases_by_question,
    collect,
    hinted_question,
    log_replies,
)
from minsky.star.rows import Rationale


@dataclass
class Mined:
    """The rows a mining pass found and its counts (rationalization's apart)."""

    rows: list[Rationale] = field(default_factory=list)
    stats: MineStats = field(default_factory=MineStats)
    hint_stats: MineStats | None = None


def hint_society(society: Society, model: str | None = None) -> Society | None:
    """The society's programmers alone, for asking with a hint; None when it has none."""
    data = society.config.model_dump(exclude_none=True)
    data["agents"] = [a for a in data["agents"] if a.get("group") == "programmer"]
    if not data["agents"]:
        return None
    resolved = {spec.agent or spec.name: spec.model for spec in society.agents}
    for agent in data["agents"]:  # the models the society was loaded with, overrides too
        agent["model"] = resolved.get(agent["name"], agent.get("model"))
    data["name"] = f"{society.name}-hinted"
    data["params"] = {**data.get("params", {}), "window": 0, "stop": "unbeatable"}
    return from_dict(data, f"{society.source} (hinted)", model)


def _run_ids(path: Path, society: str, ids: set[str]) -> list[str]:
    return [r["run_id"] for r in jsonl_rows(path)
            if r.get("society") == society and r.get("case") in ids and r.get("run_id")]


async def mine_fresh(runner: Runner, log: RunLog, society: Society, cases: Sequence[Case],
                     out: Path, excluded: Exclusion, *, round_no: int = 0,
                     rationalize: bool = True, model: str | None = None,
                     existing: Sequence[Rationale] = (), concurrency: int = 2, bench: str = "",
                     on_row: Callable[[dict[str, Any]], None] | None = None) -> Mined:
    """Run `society` over the cases not excluded (results in `OUT.results.jsonl`, resumed
    on a rerun), keep its right replies, then rationalize the unsolved ones."""
    todo = [c for c in cases if (c.id, c.question) not in excluded]
    if not todo:
        raise MinskyError("every case given is a reporting problem or excluded; nothing "
                          "to mine (pick another --seed or a larger --limit)")
    results = out.with_name(out.name + ".results.jsonl")
    await evaluate_society(runner, society, todo, results, concurrency, on_row)
    by_question = cases_by_question(todo)
    ids = {c.id for c in todo}
    replies = log_replies(log, by_question, _run_ids(results, society.name, ids), "run")
    rows, stats = collect(replies, excluded, round_no, existing, bench)
    mined = Mined(rows, stats)
    solved = {r.case for r in [*existing, *rows] if r.correct and r.kind == "program"}
    unsolved = [c for c in todo if c.id not in solved and c.kind == "number"]
    hinted = hint_society(society, model) if rationalize else None
    if hinted is None or not unsolved:
        return mined
    asked = [replace(c, question=hinted_question(c.question, str(c.answer)))
             for c in unsolved]
    hint_results = out.with_name(out.name + ".hints.jsonl")
    await evaluate_society(runner, hinted, asked, hint_results, concurrency, on_row)
    replies = log_replies(log, by_question,
                          _run_ids(hint_results, hinted.name, {c.id for c in asked}), "run")
    more, mined.hint_stats = collect(replies, excluded, round_no, [*existing, *rows], bench)
    mined.rows += more
    return mined
