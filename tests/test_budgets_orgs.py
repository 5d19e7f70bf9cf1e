"""Budgets hold for multi-round organisations: rounds, tokens and wall-clock time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from minsky.backends.base import Backend
from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Runner, RunResult
from minsky.society import Society

Q = "What is 2+2?"
REPLY = "The answer is 4. B"


def always(text: str) -> Callable[[ChatRequest], str]:
    return lambda request: text


async def run(society: Society, backends: dict[str, Backend], log: RunLog | None = None,
              question: str = Q) -> RunResult:
    # a budget that does not hold would hang here; fail instead
    return await asyncio.wait_for(
        Runner(Backends(overrides=backends), log).run(society, question), timeout=10
    )


# each organisation with agents that need at least two rounds
ORGS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "monarchy": (
        [{"name": "organizer", "group": "organizer"},
         {"name": "expert", "group": "expert", "count": 2},
         {"name": "leader", "group": "leader"}],
        {"rounds": 2},
    ),
    "democracy": ([{"name": "citizen", "count": 3}], {"revise": True}),
    "debate": ([{"name": "debater", "group": "debater", "count": 3}], {"rounds": 3}),
    "mixture": (
        [{"name": "proposer", "group": "proposer", "count": 2},
         {"name": "aggregator", "group": "aggregator"}],
        {"layers": 2},
    ),
    "roleplay": (
        [{"name": "specifier", "group": "specifier"}, {"name": "student", "group": "user"},
         {"name": "tutor", "group": "assistant"}],
        {"max_turns": 3},
    ),
    "contest": (
        [{"name": "artist", "group": "proposer", "count": 2},
         {"name": "critic", "group": "critic", "count": 2}],
        {},
    ),
}

FIRST_LABEL = {
    "monarchy": "organizer:1", "democracy": "answer", "debate": "round 1",
    "mixture": "layer 1", "roleplay": "specify", "contest": "propose",
}
SECOND_LABEL = {
    "monarchy": "experts:1", "democracy": "revise", "debate": "round 2",
    "mixture": "layer 2", "roleplay": "turn 1: instruct", "contest": "critique",
}


def org_society(make_society: Callable[..., Society], org: str, budget: dict[str, Any],
                model: str = "fake:a") -> Society:
    agents, params = ORGS[org]
    return make_society(organisation=org, agents=[dict(a) for a in agents], params=params,
                        budget=budget, model=model)


# -- the organisations finish within their default budgets ---------------------------------


@pytest.mark.parametrize("org", sorted(ORGS))
async def test_each_organisation_finishes_ok(make_society, log, org: str) -> None:
    result = await run(org_society(make_society, org, {}), {"fake:a": FunctionBackend(
        always(REPLY))}, log)
    assert result.status == "ok"
    assert result.rounds[0].label == FIRST_LABEL[org]
    assert log.get_run(result.run_id)["status"] == "ok"


# -- max_rounds ----------------------------------------------------------------------------


async def test_monarchy_max_rounds_stops_with_a_partial_outcome(make_society, log) -> None:
    society = org_society(make_society, "monarchy", {"max_rounds": 2})
    backend = FunctionBackend(always("What is 2 plus 2?"))
    result = await run(society, {"fake:a": backend}, log)
    assert result.status == "max_rounds"
    assert [r.label for r in result.rounds] == ["organizer:1", "experts:1"]
    assert len(backend.batches) == 2  # the third round was never sent
    # the partial outcome: the members' last replies, no decision
    assert result.answer is None
    assert result.outcome.detail == {"stopped": True}
    assert [(m.name, m.round) for m in result.outcome.members] == [
        ("organizer", 1), ("expert-1", 2), ("expert-2", 2),
    ]
    logged = log.get_run(result.run_id)
    assert logged["status"] == "max_rounds"
    assert logged["events"] == [
        {"round": 3, "kind": "budget", "data": {"status": "max_rounds", "round": "organizer:2"}}
    ]
    assert logged["outcome"]["detail"] == {"stopped": True}
    assert [r["label"] for r in logged["rounds"]] == ["organizer:1", "experts:1"]


@pytest.mark.parametrize("org", sorted(ORGS))
async def test_max_rounds_one_stops_every_multi_round_organisation(
    make_society, log, org: str
) -> None:
    society = org_society(make_society, org, {"max_rounds": 1})
    result = await run(society, {"fake:a": FunctionBackend(always(REPLY))}, log)
    assert result.status == "max_rounds"
    assert [r.label for r in result.rounds] == [FIRST_LABEL[org]]
    events = log.get_run(result.run_id)["events"]
    assert events == [{"round": 2, "kind": "budget",
                       "data": {"status": "max_rounds", "round": SECOND_LABEL[org]}}]


# -- max_tokens ----------------------------------------------------------------------------


async def test_debate_tiny_max_tokens_stops(make_society, log) -> None:
    society = org_society(make_society, "debate", {"max_tokens": 30})
    long = "word " * 50 + REPLY
    backend = FunctionBackend(always(long))
    result = await run(society, {"fake:a": backend}, log)
    assert result.status == "max_tokens"
    assert [r.label for r in result.rounds] == ["round 1"]
    # each of the three asks was capped to its share of the budget
    assert [r.options.max_tokens for r in backend.requests] == [10, 10, 10]
    assert all(t["finish_reason"] == "length" for t in result.rounds[0].turns)
    assert result.usage.total_tokens >= 30
    logged = log.get_run(result.run_id)
    assert logged["status"] == "max_tokens"
    # the truncated replies lost their answer line, so the next round was their repair
    assert logged["events"][-1]["data"] == {"status": "max_tokens", "round": "round 1:repair"}


@pytest.mark.parametrize("org", ["monarchy", "mixture", "roleplay"])
async def test_tiny_max_tokens_stops_other_organisations(make_society, log, org: str) -> None:
    society = org_society(make_society, org, {"max_tokens": 5})
    result = await run(society, {"fake:a": FunctionBackend(always(REPLY))}, log)
    assert result.status == "max_tokens"
    assert len(result.rounds) == 1


# -- timeout -------------------------------------------------------------------------------


@pytest.mark.parametrize("org", ["monarchy", "debate", "contest"])
async def test_slow_backend_times_out_quickly(make_society, log, org: str) -> None:
    society = org_society(make_society, org, {"timeout_s": 0.3})
    start = time.perf_counter()
    result = await run(society, {"fake:a": FunctionBackend(always(REPLY), delay_s=5)}, log)
    elapsed = time.perf_counter() - start
    assert result.status == "timeout"
    assert elapsed < 2, f"took {elapsed:.2f} s"
    assert result.rounds == []
    assert result.answer is None
    logged = log.get_run(result.run_id)
    assert logged["status"] == "timeout"
    assert logged["events"] == [
        {"round": 1, "kind": "budget", "data": {"status": "timeout", "round": FIRST_LABEL[org]}}
    ]


async def test_timeout_in_a_later_round_keeps_what_was_done(make_society, log) -> None:
    # the organizer answers at once, the experts are slow
    agents = [
        {"name": "organizer", "group": "organizer", "model": "fake:fast"},
        {"name": "expert", "group": "expert", "count": 2, "model": "fake:slow"},
    ]
    society = make_society(organisation="monarchy", agents=agents,
                           budget={"timeout_s": 0.3}, model=None)
    start = time.perf_counter()
    result = await run(society, {
        "fake:fast": FunctionBackend(always("What is two plus two?")),
        "fake:slow": FunctionBackend(always(REPLY), delay_s=5),
    }, log)
    assert time.perf_counter() - start < 2
    assert result.status == "timeout"
    assert [r.label for r in result.rounds] == ["organizer:1"]
    assert [m.name for m in result.outcome.members] == ["organizer"]
    assert result.outcome.members[0].text == "What is two plus two?"
    events = log.get_run(result.run_id)["events"]
    assert events[-1] == {"round": 2, "kind": "budget",
                          "data": {"status": "timeout", "round": "experts:1"}}
