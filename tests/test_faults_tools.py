"""Fault injection, tools: escapes from a collection, huge collections, slow tools, and a
society that asks itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Runner
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


# --- Search under races: files swapped for links, and a large collection kept cheaply -----

SWAPPER = """
import os, sys, time
notes, secret, secret_dir = sys.argv[1], sys.argv[2], sys.argv[3]
end = time.monotonic() + float(sys.argv[4])
b, sub = os.path.join(notes, "b.md"), os.path.join(notes, "sub")
tmp, old = os.path.join(notes, ".tmp"), os.path.join(notes, ".old")
while time.monotonic() < end:
    os.symlink(secret, tmp)
    os.replace(tmp, b)  # a link to a secret where a file of the folder was
    with open(tmp, "w") as f:
        f.write("tortoises are slow and steady")
    os.replace(tmp, b)
    os.rename(sub, old)  # and a link to a secret folder where a folder was
    os.symlink(secret_dir, sub)
    os.remove(sub)
    os.rename(old, sub)
"""


def test_search_never_returns_a_file_outside_its_folder_while_it_is_swapped(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    notes, secret = tmp_path / "notes", tmp_path / "secret"
    notes.mkdir()
    secret.mkdir()
    (notes / "a.md").write_text("Canberra is the capital of Australia.")
    (notes / "b.md").write_text("tortoises are slow and steady")
    (notes / "sub").mkdir()
    (notes / "sub" / "c.md").write_text("hares are quick")
    (secret / "creds.md").write_text("password swordfish hunter2")
    (secret / "c.md").write_text("password swordfish in a folder")
    search = make_search(notes, k=5, max_chars=4000)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(notes),
                                str(secret / "creds.md"), str(secret), "4"])
    leaks, answered, failed = 0, 0, 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and swapper.poll() is None:
            try:
                found = asyncio.run(search("password swordfish tortoises"))
            except (ToolError, OSError):
                failed += 1  # a file gone between listing and reading: not a leak
                continue
            answered += 1
            leaks += "swordfish" in found
        assert swapper.poll() is None  # it swapped all along
    finally:
        swapper.kill()
        swapper.wait()
    assert leaks == 0, f"{leaks} of {answered} answers came from outside the folder"
    assert answered > 20, (answered, failed)


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the file system is listed and stat'ed, from here on."""
    import os

    counts = {"listings": 0, "stats": 0}
    real_scandir, real_stat, real_lstat, real_fstat = os.scandir, os.stat, os.lstat, os.fstat

    def scandir(*args: Any, **kwargs: Any) -> Any:
        counts["listings"] += 1
        return real_scandir(*args, **kwargs)

    def stat(*args: Any, **kwargs: Any) -> Any:
        counts["stats"] += 1
        return real_stat(*args, **kwargs)

    def lstat(*args: Any, **kwargs: Any) -> Any:
        counts["stats"] += 1
        return real_lstat(*args, **kwargs)

    def fstat(*args: Any, **kwargs: Any) -> Any:
        counts["stats"] += 1
        return real_fstat(*args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "lstat", lstat)
    monkeypatch.setattr(os, "fstat", fstat)
    return counts


def test_search_over_30000_files_is_not_relisted_on_every_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "notes"
    for folder in range(30):
        (notes / f"f{folder}").mkdir(parents=True)
        for i in range(1000):
            (notes / f"f{folder}" / f"n{i}.txt").write_text(f"note {folder} {i} word{i}")
    (notes / "f7" / "n5.txt").write_text("the zebra is striped")
    search = make_search(notes, k=1)
    assert asyncio.run(search("zebra")) == "the zebra is striped"
    counts = _counting(monkeypatch)
    assert asyncio.run(search("zebra")) == "the zebra is striped"
    # bounded by the folders and the in-place re-checks per call, not by the 30,000 files
    assert counts == {"listings": 0, "stats": counts["stats"]}
    assert counts["stats"] <= 2 * 31 + 300, counts
    (notes / "f3" / "new.txt").write_text("an okapi appeared")
    counts.update(listings=0, stats=0)
    assert asyncio.run(search("okapi")) == "an okapi appeared"
    assert counts["listings"] == 1  # only the folder that changed
    assert counts["stats"] <= 1000 + 2 * 31 + 300, counts


def test_search_sees_an_edit_in_place_within_a_few_calls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minsky.tools import corpus

    monkeypatch.setattr(corpus, "RECHECK", 3)
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(12):
        (notes / f"n{i}.md").write_text(f"note {i}")
    search = make_search(notes)
    assert asyncio.run(search("note 5")).startswith("note")
    with (notes / "n9.md").open("a") as f:  # an edit in place changes no folder
        f.write(" and a quokka")
    seen = [asyncio.run(search("quokka")) for _ in range(4)]
    assert seen[-1] == "note 9 and a quokka", seen
