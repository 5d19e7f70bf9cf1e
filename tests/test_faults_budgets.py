"""Fault injection, budgets over a tree of runs: nested societies and `Ask` fan-outs spend
the top run's tokens, calls and time; a tree of files is counted before it is expanded;
absurd usage is clamped and flagged; resuming a run of many sub-runs stays cheap.

The token bound these tests hold the runner to (`minsky.account`): a tree spends at most
the top run's `max_tokens` plus one round, the round of the run that crossed the line.
The fakes count words, and a prompt's estimate (four characters a token) is above its
word count, so that round costs no more than its asks' prompts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest

from minsky.account import MAX_CALL_TOKENS
from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.runlog import RunLog
from minsky.runner import Runner, RunResult
from minsky.society import MAX_TREE_MEMBERS, Society, load

Q = "What is 2+2?"
VERBOSE = "word " * 80 + "The answer is 4."


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def society(name: str, members: str, org: str = "vote", budget: str = "",
            params: str = "") -> str:
    return (f'name = "{name}"\norganisation = "{org}"\nmodel = "fake:w"\n'
            f"{budget}\n{params}\n{members}")


def tree(tmp_path: Path, budget: str, org: str = "debate",
         params: str = "[params]\nrounds = 3") -> Society:
    """Three levels, four members each: 64 members that ask a model."""
    write(tmp_path / "leaf.toml", society("leaf", '[[agents]]\nname = "m"\ncount = 4\n'))
    write(tmp_path / "mid.toml", society(
        "mid", '[[agents]]\nname = "leaf"\ncount = 4\nsociety = "leaf.toml"\n'))
    top = write(tmp_path / "top.toml", society(
        "top", '[[agents]]\nname = "mid"\ngroup = "debater"\ncount = 4\n'
        'society = "mid.toml"\n', org, budget, params))
    return load(str(top))


async def run(soc: Society, backends: dict, log: RunLog | None = None,
              resume: str | None = None) -> RunResult:
    # a budget that does not hold would take far longer; fail instead
    return await asyncio.wait_for(
        Runner(Backends(overrides=backends), log).run(soc, Q, resume=resume), timeout=60)


def model_calls(log: RunLog) -> list[dict]:
    """Every call a model answered, in every run of the log."""
    rows = log.db.execute("SELECT * FROM calls WHERE backend NOT LIKE 'society:%' "
                          "AND replayed = 0")
    return [dict(r) for r in rows]


# --- nested societies draw on the top run's budget ----------------------------------------


async def test_a_nested_tree_spends_no_more_than_the_top_budget(tmp_path: Path,
                                                               log: RunLog) -> None:
    result = await run(tree(tmp_path, "[budget]\nmax_tokens = 400"),
                       {"fake:w": FunctionBackend(lambda r: VERBOSE)}, log)
    calls = model_calls(log)
    spent = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    # one round past the line: four asks, each no dearer than its prompt
    bound = 400 + 4 * max(c["prompt_tokens"] for c in calls)
    assert spent <= bound, f"{spent} tokens for a budget of 400 (bound {bound})"
    assert result.status == "max_tokens"
    assert result.usage.total_tokens == spent  # the top run accounts for its whole tree
    # every run of the tree ended, and says how
    assert "running" not in {r["status"] for r in log.list_runs(1000)}


async def test_max_calls_holds_over_the_whole_tree(tmp_path: Path, log: RunLog) -> None:
    backend = FunctionBackend(lambda r: VERBOSE)
    result = await run(tree(tmp_path, "[budget]\nmax_calls = 8"), {"fake:w": backend}, log)
    assert len(backend.requests) <= 8
    assert len(model_calls(log)) == len(backend.requests)
    assert result.status == "max_calls"
    assert log.get_run(result.run_id)["status"] == "max_calls"


async def test_a_run_stopped_by_max_calls_is_logged_whole_and_resumes(
        tmp_path: Path, log: RunLog) -> None:
    path = write(tmp_path / "d.toml", society(
        "d", '[[agents]]\nname = "m"\ngroup = "debater"\ncount = 3\n', "debate",
        "[budget]\nmax_calls = 7", "[params]\nrounds = 3"))
    backend = FunctionBackend(lambda r: VERBOSE)
    first = await run(load(str(path)), {"fake:w": backend}, log)
    assert first.status == "max_calls"
    assert len(backend.requests) == 6  # two rounds of three: the third did not fit
    logged = log.get_run(first.run_id)
    assert len(logged["calls"]) == 6 and logged["status"] == "max_calls"
    assert logged["events"][-1]["data"]["status"] == "max_calls"
    # with a larger budget the run goes on from where it stopped: nothing asked twice
    write(path, path.read_text().replace("max_calls = 7", "max_calls = 100"))
    again = FunctionBackend(lambda r: VERBOSE)
    resumed = await run(load(str(path)), {"fake:w": again}, log, resume=first.run_id)
    assert resumed.status == "ok"
    assert len(again.requests) == 3


# --- a tree of files is counted, not expanded -----------------------------------------------


def test_a_tree_of_files_past_the_member_cap_is_refused_in_one_line(tmp_path: Path) -> None:
    # each file within the per-file cap (4 × 64 = 256 members); together 16.7 million
    entries = "".join(f'[[agents]]\nname = "a{k}"\ncount = 64\n' for k in range(4))
    write(tmp_path / "c.toml", society("c", entries))
    for name, child in (("b", "c.toml"), ("a", "b.toml")):
        write(tmp_path / f"{name}.toml", society(name, "".join(
            f'[[agents]]\nname = "a{k}"\ncount = 64\nsociety = "{child}"\n' for k in range(4))))
    start = time.perf_counter()
    with pytest.raises(MinskyError) as err:
        load(str(tmp_path / "a.toml"))
    assert time.perf_counter() - start < 2
    message = str(err.value)
    assert "\n" not in message and f"{MAX_TREE_MEMBERS:,}" in message
    # the same through many entries naming one file (read once, not once per entry)
    write(tmp_path / "b.toml", society("b", "".join(
        f'[[agents]]\nname = "a{k}"\nsociety = "c.toml"\n' for k in range(200))))
    with pytest.raises(MinskyError, match="members in all"):
        load(str(tmp_path / "b.toml"))


def test_a_tree_within_the_cap_loads_and_knows_its_size(tmp_path: Path) -> None:
    soc = tree(tmp_path, "")
    assert soc.size == 64


# --- an Ask fan-out keeps the asker's deadline and tokens ----------------------------------


class Stubborn(FunctionBackend):
    """Finishes every batch it began, cancelled or not, as a native decode in a thread
    does: a cancellation that reaches it is lost."""

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        task = asyncio.ensure_future(super().complete(requests))
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return task.result()


def keeps_asking(request: ChatRequest) -> str:
    return " done." if request.prefix.count("[Ask(") >= 20 else " more [Ask(q)->"


def asker(tmp_path: Path, budget: str) -> Society:
    write(tmp_path / "helper.toml", 'name = "helper"\norganisation = "single"\n'
          'model = "fake:h"\n[[agents]]\nname = "h"\n')
    return load(str(write(tmp_path / "boss.toml", (
        'name = "boss"\norganisation = "vote"\nmodel = "fake:t"\nanswer = "text"\n'
        f'{budget}\n[tools.Ask]\nsociety = "helper.toml"\n'
        "[tool_limits]\nmax_calls = 20\ntimeout_s = 30\n"
        '[[agents]]\nname = "a"\ncount = 6\ntools = ["Ask"]\n'))))


async def test_an_ask_fan_out_ends_near_the_askers_deadline(tmp_path: Path,
                                                           log: RunLog) -> None:
    soc = asker(tmp_path, "[budget]\ntimeout_s = 1")
    start = time.perf_counter()
    result = await run(soc, {"fake:t": Stubborn(keeps_asking, delay_s=0.2),
                             "fake:h": Stubborn(lambda r: VERBOSE, delay_s=0.2)}, log)
    seconds = time.perf_counter() - start
    # the deadline, plus the calls in flight that cannot be interrupted (0.2 s each)
    assert seconds < 3, f"{seconds:.1f} s for timeout_s = 1"
    assert result.status == "timeout"
    assert "running" not in {r["status"] for r in log.list_runs(1000)}


async def test_an_ask_fan_out_spends_no_more_than_the_askers_tokens(
        tmp_path: Path, log: RunLog) -> None:
    soc = asker(tmp_path, "[budget]\nmax_tokens = 2000")
    result = await run(soc, {"fake:t": FunctionBackend(keeps_asking),
                             "fake:h": FunctionBackend(lambda r: VERBOSE)}, log)
    calls = model_calls(log)
    spent = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    bound = 2000 + 6 * max(c["prompt_tokens"] for c in calls)
    assert spent <= bound, f"{spent} tokens for a budget of 2000 (bound {bound})"
    assert result.usage.total_tokens == spent
    assert result.status in ("max_tokens", "ok")


# --- absurd usage: clamped, flagged, and budgets still hold ---------------------------------


class Liar(FunctionBackend):
    """Says each reply used `claim` tokens, prompt and completion alike."""

    def __init__(self, claim: object) -> None:
        super().__init__(lambda r: "I think the answer is 4.")
        self.claim = claim

    def answer(self, request: ChatRequest) -> ChatReply:
        reply = super().answer(request)
        reply.usage = Usage(self.claim, self.claim)  # type: ignore[arg-type]
        return reply


@pytest.mark.parametrize("claim", [-10**6, 0, 10**19, 1e300, float("inf"), float("nan")])
async def test_absurd_usage_is_clamped_flagged_and_budgets_hold(claim: object,
                                                               make_society,
                                                               log: RunLog) -> None:
    soc = make_society(organisation="debate", params={"rounds": 10},
                       agents=[{"name": "d", "group": "debater", "count": 3}],
                       budget={"max_tokens": 600, "max_rounds": 40}, model="fake:a")
    result = await run(soc, {"fake:a": Liar(claim)}, log)
    assert result.status == "max_tokens"  # the budget was not switched off
    logged = log.get_run(result.run_id)
    assert all(0 < c["prompt_tokens"] <= MAX_CALL_TOKENS for c in logged["calls"])
    assert all(0 < c["completion_tokens"] <= MAX_CALL_TOKENS for c in logged["calls"])
    flags = [e for e in logged["events"] if e["kind"] == "usage"]
    assert len(flags) == len(logged["calls"])
    json.dumps(flags)  # what was reported is kept, as the log can hold it


def test_the_openai_backend_clamps_counts_the_log_cannot_hold() -> None:
    from minsky.backends.openai import _count

    assert _count(10**19, "x") == MAX_CALL_TOKENS
    assert _count(1e300, "x") == MAX_CALL_TOKENS
    assert _count(float("inf"), "x") == MAX_CALL_TOKENS
    assert _count(-10**6, "x") == 0  # and the runner counts the text instead


# --- resuming a run of many sub-runs: a bounded number of queries -------------------------


def test_resuming_a_run_of_5000_sub_runs_takes_a_bounded_number_of_queries(
        tmp_path: Path) -> None:
    log = RunLog(tmp_path / "runs.db")
    top, n = "0" * 26, 5000
    runs = [(top, None)] + [(f"1{k:025d}", top) for k in range(n)]
    with log.db:
        log.db.executemany(
            "INSERT INTO runs (id, created_at, society, society_json, question, kind, "
            "models_json, status, parent_id) VALUES (?, 0, 's', '{}', 'q', 'text', '{}', "
            "'timeout', ?)", runs)
        log.db.executemany(
            "INSERT INTO calls (id, run_id, round, idx, agent, purpose, backend, "
            "request_json, request_hash, text, finish_reason, prompt_tokens, "
            "completion_tokens, cached_tokens, latency_s, created_at) "
            "VALUES (?, ?, 1, 0, 'm', 'answer', 'fake', '{}', ?, 'x', 'stop', 1, 1, 0, 0, 0)",
            [(f"2{k:025d}", rid, f"h{k}") for k, (rid, _) in enumerate(runs)])
        log.db.executemany(
            "INSERT INTO events (run_id, round, kind, data_json, created_at) "
            "VALUES (?, 1, 'budget', '{}', 0)", [(rid,) for rid, _ in runs])
    statements: list[str] = []
    log.db.set_trace_callback(statements.append)
    start = time.perf_counter()
    replies = log.replies_for_resume(top)
    log.restart_run(top)
    seconds = time.perf_counter() - start
    log.db.set_trace_callback(None)
    assert sum(len(r) for r in replies.values()) == n + 1
    assert log.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert log.db.execute("SELECT count(*) FROM calls").fetchone()[0] == 0
    assert log.db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    # however many sub-runs: a handful of statements (it was six per sub-run)
    assert len(statements) < 30, len(statements)
    assert seconds < 10, f"{seconds:.1f} s"
    log.close()
