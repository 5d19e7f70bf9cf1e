"""Every built-in society loads, and runs end to end on a fake backend."""

from __future__ import annotations

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import Society, builtin_names, load

REPLY = "The answer is 4. B"
PROGRAM = "def solution():\n    return 2 + 2"  # what a programmer (asked in a code block) writes
FAKE = "fake:x"


def models(society: Society) -> set[str]:
    """Every model spec a society (and its sub-societies) would load."""
    found: set[str] = set()
    for agent in society.agents:
        if agent.society is not None:
            found |= models(agent.society)
        else:
            found.add(agent.model)
    return found


def test_the_expected_societies_ship() -> None:
    names = builtin_names()
    for name in ("monarchy", "democracy", "debate", "debate-editor", "mixture", "roleplay",
                 "text-to-image", "artist-impressionist", "artist-photographer",
                 "artist-surrealist", "single", "vote3", "vote5", "vote9"):
        assert name in names


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_society_loads(name: str) -> None:
    society = load(name)
    assert society.name == name
    assert society.source == f"builtin:{name}"
    assert society.config.description
    assert society.agents


@pytest.mark.parametrize("name", builtin_names())
async def test_builtin_society_runs_end_to_end_on_a_fake(name: str, log: RunLog) -> None:
    society = load(name, model=FAKE)
    # nothing may fall through to a real model
    assert models(society) == {FAKE}
    backend = FunctionBackend(
        lambda request: PROGRAM if request.prefix.startswith("```python") else REPLY)
    result = await Runner(Backends(overrides={FAKE: backend}), log).run(society, "What is 2+2?")
    assert result.status == "ok", (result.status, result.error)
    assert result.error is None
    assert backend.requests
    logged = log.get_run(result.run_id)
    assert logged["status"] == "ok"
    if name == "text-to-image":
        # three artist sub-societies ran as runs of their own
        children = logged["children"]
        assert sorted(c["society"] for c in children) == [
            "artist-impressionist", "artist-photographer", "artist-surrealist",
        ]
        assert all(c["status"] == "ok" for c in children)
    elif society.config.answer != "text":
        assert result.answer == "4"
