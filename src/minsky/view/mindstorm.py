"""A run laid out as its mindstorm: rounds × members, sub-society runs folded in place.

Built from `RunLog.get_run` (what `minsky logs show` prints) into plain dicts a template
walks: for each round, each member's calls (what it was shown, what it said, its tool
calls, the backend request and reply), then the votes, the decision, budget stops,
errors and, for economy runs, the ledger entries and rulings.

A page shows at most MAX_CALLS backend calls over the whole tree, not per run: a run with
thousands of sub-society runs would otherwise read and render thousands of runs. Past the
cap, calls are counted as not shown and sub-runs are links instead of folded in.
"""

from __future__ import annotations

from typing import Any

from minsky.errors import MinskyError
from minsky.organisations.drafts import describe_path
from minsky.runlog import RunLog
from minsky.view.source import MAX_CALLS, MAX_DEPTH


def _groups(config: dict[str, Any] | None) -> dict[str, str]:
    """Member name → group, from a logged society config (copies named name-1, …)."""
    groups: dict[str, str] = {}
    for a in (config or {}).get("agents", []):
        count = a.get("count", 1)
        names = [a["name"]] if count == 1 else [f"{a['name']}-{i}" for i in range(1, count + 1)]
        groups.update(dict.fromkeys(names, a.get("group", "member")))
    return groups


def _shown(request: dict[str, Any]) -> str:
    """The last message a member was shown: its task or the round's prompt."""
    messages = request.get("messages") or []
    return messages[-1]["content"] if messages else ""


def _tally(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    """The votes as rows (answer or proposer, score) and ballots, from any organisation."""
    tally = (outcome or {}).get("tally")
    if not tally:
        return None
    rows: list[tuple[str, Any]] = []
    if tally.get("counts"):
        rows = list(tally["counts"].items())
    elif tally.get("scores") is not None:
        names = tally.get("proposers") or tally.get("candidates") or []
        rows = [(str(names[i]) if i < len(names) else f"#{i}", score)
                for i, score in enumerate(tally["scores"])]
    winner = tally.get("winner")
    if isinstance(winner, int) and (names := tally.get("proposers") or tally.get("candidates")):
        winner = names[winner] if winner < len(names) else winner
    ballots = [(voter, ", ".join(map(str, b)) if isinstance(b, list) else str(b))
               for voter, b in (tally.get("ballots") or {}).items()]
    rest = {k: v for k, v in tally.items()
            if k not in ("counts", "scores", "proposers", "candidates", "ballots", "winner")}
    return {"rows": rows, "winner": winner, "ballots": ballots, "rest": rest}


class Budget:
    """The backend calls one page may still show, shared by a run and its sub-runs."""

    def __init__(self, calls: int) -> None:
        self.calls = calls


def build(log: RunLog, run_id: str, depth: int = 0,
          budget: Budget | None = None) -> dict[str, Any]:
    """The run `run_id` as a mindstorm; sub-society runs nested up to MAX_DEPTH, and
    MAX_CALLS calls in all (`budget`)."""
    budget = budget or Budget(MAX_CALLS)
    run = log.get_run(run_id)
    groups = _groups(run.get("society_config"))
    tools: dict[str, list[dict[str, Any]]] = {}
    for tool in run["tool_calls"]:
        tools.setdefault(tool["call_id"], []).append(tool)
    members: list[str] = []
    by_round: dict[int, dict[str, list[dict[str, Any]]]] = {}
    calls = run["calls"][:max(0, budget.calls)]
    budget.calls -= len(calls)
    for call in calls:
        if call["agent"] not in members:
            members.append(call["agent"])
        found = call["child_id"]  # the sub-society run that answered this call, if one did
        child = None
        if found and depth < MAX_DEPTH and budget.calls > 0:
            try:
                child = build(log, found, depth + 1, budget)
                child["same_task"] = child["run"]["question"] == run["question"]
            except MinskyError:
                child = None  # a sub-run cleared by a resume: the call still shows
        view = {**call, "shown": _shown(call["request"]), "tools": tools.get(call["id"], []),
                "group": groups.get(call["agent"], ""), "child": child,
                "child_id": found}
        by_round.setdefault(call["round"], {}).setdefault(call["agent"], []).append(view)
    labels = {r["round"]: r["label"] for r in run["rounds"]}
    events: dict[int | None, list[dict[str, Any]]] = {}
    ledger, rulings = [], []
    for event in run["events"]:
        if event["kind"] == "ledger":
            ledger.append(event["data"])
        elif event["kind"] == "ruling":
            rulings.append(event["data"])
        else:
            events.setdefault(event["round"], []).append(event)
    rounds = [{"round": n, "label": labels.get(n, ""), "cells": by_round.get(n, {}),
               "events": events.pop(n, [])}
              for n in sorted(set(labels) | set(by_round))]
    return {
        "run": run, "members": members, "groups": groups, "rounds": rounds,
        "other_events": [e for evs in events.values() for e in evs],
        "tally": _tally(run.get("outcome")), "ledger": ledger, "rulings": rulings,
        "truncated": len(run["calls"]) - len(calls), "depth": depth,
        "tokens": run["prompt_tokens"] + run["completion_tokens"],
        "path": describe_path((run.get("outcome") or {}).get("detail")),
    }
