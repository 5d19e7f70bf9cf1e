"""Each organisation records who read whose messages (Outcome.reads), for credit."""

from __future__ import annotations

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.runner import Runner
from minsky.society import load


@pytest.mark.parametrize("name, expected", [
    ("vote5", {}),
    ("debate", {"debater-1": ["debater-2", "debater-3"], "debater-2": ["debater-1", "debater-3"],
                "debater-3": ["debater-1", "debater-2"]}),
    ("monarchy", {"expert-1": ["organizer"], "expert-2": ["organizer"],
                  "expert-3": ["organizer"], "organizer": ["expert-1", "expert-2", "expert-3"],
                  "leader": ["organizer"]}),
    ("mixture", {"proposer-1": ["proposer-1", "proposer-2", "proposer-3"],
                 "proposer-2": ["proposer-1", "proposer-2", "proposer-3"],
                 "proposer-3": ["proposer-1", "proposer-2", "proposer-3"],
                 "aggregator": ["proposer-1", "proposer-2", "proposer-3"]}),
    ("roleplay", {"student": ["tutor", "specifier"], "tutor": ["student", "specifier"]}),
])
async def test_outcome_reads(name, expected) -> None:
    society = load(name, "fake:x")
    backend = FunctionBackend(lambda r: "The answer is 4.")
    result = await Runner(Backends(overrides={"fake:x": backend})).run(society, "2+2?")
    assert result.status == "ok"
    assert result.outcome.reads == expected


async def test_democracy_reads_its_neighbours() -> None:
    society = load("democracy", "fake:x")
    answers = iter(["The answer is 4."] * 10 + ["A"] * 5)
    backend = FunctionBackend(lambda r: next(answers))
    result = await Runner(Backends(overrides={"fake:x": backend})).run(society, "2+2?")
    assert result.outcome.reads["citizen-1"] == [f"citizen-{i}" for i in range(2, 6)]
