"""An evaluation's plan as data (issue 30): the societies to run, the vote prefixes read
off their rows and the compute-matched pairs, each summary line a society and its k."""

from __future__ import annotations

from typing import Any

import pytest

from minsky.errors import MinskyError
from minsky.evals.harness import Entry, Plan
from minsky.society import Society, from_dict, load


def vote(name: str, members: int) -> Society:
    return from_dict({"name": name, "organisation": "vote", "model": "echo:",
                      "agents": [{"name": "s", "count": members}]}, f"{name}.toml")


def debate() -> Society:
    """Two debaters over two rounds: four calls a case."""
    return from_dict({"name": "mini-debate", "organisation": "debate", "model": "echo:",
                      "params": {"rounds": 2},
                      "agents": [{"name": "d", "group": "debater", "count": 2}]}, "d.toml")


def rows(society: str, calls: int, cases: int = 3, **extra: Any) -> list[dict[str, Any]]:
    return [{"case": f"c{i}", "society": society, "calls": calls, "status": "ok", **extra}
            for i in range(cases)]


def names(plan: Plan) -> list[tuple[str, int]]:
    return [(e.name, e.k) for e in plan.entries]


def test_an_entry_is_a_society_and_its_k() -> None:
    nine = vote("v9", 9)
    assert (Entry(nine, 9).name, Entry(nine, 9).whole) == ("v9", True)
    assert (Entry(nine, 4).name, Entry(nine, 4).whole) == ("v9[:4]", False)


def test_prefixes_are_planned_per_vote_below_its_size() -> None:
    plan = Plan.of([load("single", "echo:"), vote("v5", 5), vote("v9", 9)], [1, 5, 7])
    # a k equal to a vote's size is the vote itself; one above it comes from a larger vote
    assert names(plan) == [("single", 1), ("v5[:1]", 1), ("v5", 5), ("v9[:1]", 1),
                           ("v9[:5]", 5), ("v9[:7]", 7), ("v9", 9)]
    assert [s.name for s in plan.runs] == ["single", "v5", "v9"] and plan.pairs == []


def test_prefixes_need_a_vote_large_enough() -> None:
    with pytest.raises(MinskyError, match="--prefixes: no vote society"):
        Plan.of([load("single", "echo:")], [3])
    with pytest.raises(MinskyError, match="--prefixes 10: v9 has 9 members"):
        Plan.of([vote("v5", 5), vote("v9", 9)], [10])


def test_a_matched_vote_to_sample_runs_next() -> None:
    d, one = debate(), load("single", "echo:")
    plan = Plan.of([d, one], matched=True)
    baseline = plan.match(d, rows("mini-debate", 4) + rows("single", 1))
    assert baseline is not None and baseline.name == "vote@4"
    assert [s.name for s in plan.runs] == ["mini-debate", "vote@4", "single"]
    assert names(plan) == [("mini-debate", 2), ("vote@4", 4), ("single", 1)]
    assert plan.pairs == [("vote@4", "mini-debate")]
    assert {a.model for a in baseline.agents} == {"echo:"}  # the debate's own model


def test_a_matched_vote_is_read_off_a_larger_vote_given() -> None:
    d, nine = debate(), load("vote9", "echo:")
    plan = Plan.of([d, nine], matched=True, model="echo:")
    # failed runs do not count towards the calls a case
    assert plan.match(d, rows("mini-debate", 4) + rows("mini-debate", 9, status="error")) is None
    assert [s.name for s in plan.runs] == ["mini-debate", "vote9"]
    assert names(plan) == [("mini-debate", 2), ("vote9[:4]", 4), ("vote9", 9)]
    assert plan.pairs == [("vote9[:4]", "mini-debate")]


def test_only_societies_that_are_not_votes_or_singles_are_matched() -> None:
    d, five = debate(), load("vote5", "echo:")
    assert Plan.of([d]).match(d, rows("mini-debate", 4)) is None  # no --matched
    plan = Plan.of([five, load("single", "echo:")], matched=True)
    assert plan.match(five, rows("vote5", 5)) is None
    assert plan.match(plan.runs[1], rows("single", 1)) is None
    assert plan.pairs == [] and len(plan.runs) == 2


def test_derived_rows_score_each_prefix_off_its_vote() -> None:
    plan = Plan.of([vote("v3", 3)], [1, 2])
    row = {"case": "c0", "society": "v3", "votes": ["1", "2", "2"], "kind": "number",
           "gold": "2", "member_tokens": [[1, 2], [3, 4], [5, 6]], "correct": True}
    derived = plan.derived_rows([row])
    assert [(r["society"], r["answer"], r["calls"]) for r in derived] == [
        ("v3[:1]", "1", 1), ("v3[:2]", "1", 2)]
