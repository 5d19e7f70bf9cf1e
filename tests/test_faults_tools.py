"""Fault injection, tools: escapes from a collection, huge collections, slow tools, and a
society that asks itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Backends, Runner
from minsky.society import MAX_DEPTH, load
from minsky.tools.base import Tool, ToolError
from minsky.tools.calls import ToolLimits, run_tool
from minsky.tools.search import make_search

# --- Search stays in its folder and refuses what it cannot read in time -------------------


def test_search_does_not_follow_links_out_of_its_folder(tmp_path: Path) -> None:
    notes, secret = tmp_path / "notes", tmp_path / "secret"
    notes.mkdir()
    secret.mkdir()
    (notes / "a.md").write_text("Canberra is the capital of Australia.")
    (secret / "creds.md").write_text("password hunter2 swordfish")
    (notes / "link.md").symlink_to(secret / "creds.md")
    (notes / "passwd.md").symlink_to("/etc/passwd")
    (notes / "alias.md").symlink_to(notes / "a.md")  # inside the folder: fine
    search = make_search(notes, k=5, max_chars=2000)
    assert asyncio.run(search("password swordfish")) == "no results"
    assert asyncio.run(search("root bin daemon")) == "no results"
    assert "Canberra" in asyncio.run(search("capital Australia"))


def test_search_refuses_a_collection_over_its_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet " * 350_000)  # 9.1 MB
    search = make_search(big)
    start = time.perf_counter()
    with pytest.raises(ToolError, match="over its size limit of 8,388,608 bytes"):
        asyncio.run(search("lorem"))
    assert time.perf_counter() - start < 1.0
    assert "ipsum" in asyncio.run(make_search(big, max_bytes=10**7, max_chars=50)("lorem"))


# --- a synchronous tool runs off the event loop, and its timeout fires -------------------


def test_a_slow_sync_tool_times_out_and_blocks_no_one() -> None:
    def slow(text: str) -> str:
        time.sleep(2)
        return "late"

    begun = time.perf_counter()

    tools = {"Slow": Tool("Slow", "sleeps", slow)}

    async def go() -> tuple[str, int, float]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.create_task(tick())
        start = time.perf_counter()
        call = await run_tool(tools, "Slow", "x", ToolLimits(timeout_s=0.5))
        seconds = time.perf_counter() - start
        ticker.cancel()
        return call.result, ticks, seconds

    result, ticks, seconds = asyncio.run(go())
    assert result == "error: timed out after 0.5 s"
    assert seconds < 1.5  # the abandoned thread finishes on its own, unwaited
    assert ticks >= 5  # the loop went on while the tool slept
    assert time.perf_counter() - begun < 1.5  # nor does closing the loop wait for the thread


# --- Ask: nesting depth, the parent's token budget, the link to the parent ---------------


def asker(path: Path, ask: str, max_tokens: int = 100_000) -> Path:
    path.write_text(
        f'name = "{path.stem}"\norganisation = "single"\nmodel = "fake:t"\n'
        f"[budget]\ntimeout_s = 5\nmax_tokens = {max_tokens}\n"
        f'[tools.Ask]\nsociety = "{ask}"\n[tool_limits]\ntimeout_s = 5\n'
        '[[agents]]\nname = "a"\ntools = ["Ask"]\noptions = { max_tokens = 64 }\n'
    )
    return path


def calls_ask(request: ChatRequest) -> str:
    return " done." if request.prefix else "Let me ask [Ask(what is it?)->"


async def test_a_society_that_asks_itself_stops_at_the_depth_limit(tmp_path: Path,
                                                                  log: RunLog) -> None:
    society = load(str(asker(tmp_path / "self.toml", "self.toml")))
    runner = Runner(Backends(overrides={"fake:t": FunctionBackend(calls_ask)}), log)
    start = time.perf_counter()
    result = await runner.run(society, "q")
    assert time.perf_counter() - start < 5
    runs = log.list_runs(1000)
    assert len(runs) == MAX_DEPTH + 1
    # each run is the child of the one before: logs show and --resume see them all
    by_id = {r["id"]: r for r in runs}
    depth, run = 0, by_id[result.run_id]
    while children := [r for r in runs if r["parent_id"] == run["id"]]:
        (run,) = children
        depth += 1
    assert depth == MAX_DEPTH
    deepest = log.get_run(run["id"])
    assert "nest deeper than 4 levels" in deepest["tool_calls"][0]["result"]


async def test_a_society_asked_spends_the_askers_tokens(tmp_path: Path, log: RunLog) -> None:
    (tmp_path / "helper.toml").write_text(
        'name = "helper"\norganisation = "single"\nmodel = "fake:h"\n'
        '[[agents]]\nname = "h"\noptions = { max_tokens = 200 }\n')
    society = load(str(asker(tmp_path / "boss.toml", "helper.toml", max_tokens=40)))
    helper = FunctionBackend(lambda r: " ".join(["word"] * 100))
    backends = Backends(overrides={"fake:t": FunctionBackend(calls_ask), "fake:h": helper})
    result = await Runner(backends, log).run(society, "q")
    (child,) = [r for r in log.list_runs() if r["parent_id"] == result.run_id]
    # the helper got only what the asker had (40 tokens), and the asker paid for it
    assert child["completion_tokens"] + child["prompt_tokens"] <= 40 + 64
    assert helper.requests[0].options.max_tokens <= 40
    assert result.usage.total_tokens >= child["completion_tokens"] + child["prompt_tokens"]


def test_the_ask_tools_depth_limit_is_the_societies_nesting_limit() -> None:
    from minsky import builtin

    assert builtin.MAX_DEPTH == MAX_DEPTH
