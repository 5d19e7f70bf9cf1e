"""Direct runs: model calls no society makes (samples, scores) go through the runner's
gate — logged with their token counts, drawn from a budget, replayed on resume."""

from __future__ import annotations

import math

import pytest

from minsky.account import Account
from minsky.backends.base import Scored, TextScoring, scoring, text_scoring
from minsky.backends.fakes import EchoBackend, ScoringFake, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.direct import BudgetStop, Limits
from minsky.errors import MinskyError
from minsky.messages import ChatRequest, Message, Options
from minsky.runlog import RunLog
from minsky.runner import Runner

ITEMS = [("The sky is", " blue today."), ("Two and two make", " four.")]


def runner(backend, log: RunLog | None = None) -> Runner:
    return Runner(Backends(overrides={"fake:s": backend}), log)


def test_the_scoring_fake_is_a_scoring_backend_and_the_others_are_not() -> None:
    fake = ScoringFake()
    assert isinstance(fake, TextScoring)
    assert text_scoring(fake) is fake and scoring(fake) is fake
    with pytest.raises(MinskyError, match="cannot give token log-probabilities"):
        scoring(EchoBackend())


async def test_the_scoring_fake_scores_each_token_after_what_precedes_it() -> None:
    seen: list[tuple[str, str]] = []

    def logprob(before: str, token: str) -> float:
        seen.append((before, token))
        return -1.0 if token != "[" else -2.0

    (scored,) = await ScoringFake(logprob).score([("ctx", " a b")], ["["])
    assert scored.logprobs == [-1.0, -1.0] and scored.probes == [[-2.0], [-2.0]]
    assert scored.total == -2.0 and scored.context_tokens == 1
    assert ("ctx a", " b") in seen and ("ctx", "[") in seen


async def test_a_score_is_logged_with_its_token_counts(log: RunLog) -> None:
    fake = ScoringFake()
    scores = await runner(fake, log).score("fake:s", ITEMS, ["["], label="probe")
    assert [len(s.logprobs) for s in scores] == [2, 1]
    (listed,) = log.list_runs()
    run = log.get_run(listed["id"])
    assert run["society"] == "probe" and run["status"] == "ok"
    got = run["scores"]
    assert [(s["context"], s["continuation"]) for s in got] == ITEMS
    assert [s["probes"] for s in got] == [["["], ["["]]
    # "The sky is" is 3 tokens and " blue today." 2; "Two and two make" 4, " four." 1
    assert [s["prompt_tokens"] for s in got] == [5, 5]
    assert [s["total"] for s in got] == [-2.0, -1.0]
    assert run["prompt_tokens"] == 10 and run["completion_tokens"] == 0
    assert run["rounds"][0]["label"] == "probe"


async def test_a_backend_that_cannot_score_is_refused(log: RunLog) -> None:
    with pytest.raises(MinskyError, match="cannot give token log-probabilities"):
        await runner(EchoBackend(), log).score("fake:s", ITEMS)
    assert log.list_runs() == []  # refused before a run began
    with pytest.raises(MinskyError, match="cannot give token log-probabilities"):
        async with runner(EchoBackend(), log).direct("fake:s", "scoring") as run:
            await run.score(ITEMS)
    (listed,) = log.list_runs()
    assert listed["status"] == "error"


async def test_a_score_draws_from_the_run_budget_and_stops_at_it(log: RunLog) -> None:
    fake = ScoringFake()
    r = runner(fake, log)
    async with r.direct("fake:s", "scoring", limits=Limits(max_tokens=12)) as run:
        await run.score(ITEMS[:1])
        assert run.account.usage.prompt_tokens == 5
        with pytest.raises(BudgetStop, match="max_tokens"):
            await run.score(ITEMS)  # about 8 tokens more than the 7 left
        assert len(fake.scored) == 1  # the batch it could not pay for was not sent
        await run.score(ITEMS[1:])  # 5 tokens: it can still pay for this one
        assert run.account.usage.prompt_tokens == 10
    # a parent's account is drawn on too
    above = Account(100, 100, 60.0)
    await r.score("fake:s", ITEMS, account=above)
    assert above.usage.prompt_tokens == 10 and above.calls == 2


async def test_a_run_stopped_by_its_budget_says_so_in_the_log(log: RunLog) -> None:
    with pytest.raises(BudgetStop):
        async with runner(ScoringFake(), log).direct("fake:s", "scoring",
                                                     limits=Limits(max_calls=1)) as run:
            await run.score(ITEMS)
    (listed,) = log.list_runs()
    shown = log.get_run(listed["id"])
    assert shown["status"] == "max_calls"
    assert shown["events"][0]["kind"] == "budget"


async def test_a_resumed_run_replays_its_scores_and_calls(tmp_path) -> None:
    log = RunLog(tmp_path / "runs.db")
    fake = ScoringFake(fn=lambda r: "sampled")
    requests = [ChatRequest([Message("user", "hi")], Options(seed=s)) for s in range(2)]
    with pytest.raises(RuntimeError):
        async with runner(fake, log).direct("fake:s", "annotate") as run:
            first = await run.score(ITEMS, ["["])
            replies = await run.chat(requests, "sample")
            raise RuntimeError("killed")
    run_id = run.run_id
    assert log.get_run(run_id)["status"] == "error"
    again = ScoringFake(fn=lambda r: "other")
    async with runner(again, log).direct("fake:s", "annotate", resume=run_id) as run:
        assert await run.score(ITEMS, ["["]) == first
        assert [r.text for r in await run.chat(requests, "sample")] == [r.text for r in replies]
        # not logged before: scored now
        await run.score([("new", " text")])
        assert run.account.usage.prompt_tokens == 10 + 2 + 2  # replays count as spent
    assert again.scored == [[("new", " text")]] and again.batches == []
    shown = log.get_run(run_id)
    assert shown["status"] == "ok"
    assert [s["replayed"] for s in shown["scores"]] == [1, 1, 0]
    assert [c["replayed"] for c in shown["calls"]] == [1, 1]
    log.close()


async def test_call_is_a_direct_run_of_one_batch(log: RunLog) -> None:
    backend = ScriptedBackend(["x", "y"])
    requests = [ChatRequest([Message("user", "hi")], Options(seed=s)) for s in range(2)]
    above = Account(1000, 1000, 60.0)
    r = runner(backend, log)
    async with r.direct("fake:s", "sampling", account=above) as run:
        replies = await run.chat(requests)
    assert [x.text for x in replies] == ["x", "y"]
    assert above.calls == 2 and above.usage.total_tokens == 2 + 2
    (listed,) = log.list_runs()
    shown = log.get_run(listed["id"])
    assert [c["agent"] for c in shown["calls"]] == ["sampling", "sampling"]


async def test_a_replayed_score_counts_what_it_cost_the_first_time() -> None:
    scored = Scored([1, 2], [math.log(0.5)] * 2, [], context_tokens=7, cached_tokens=3)
    from minsky.account import score_usage

    usage = score_usage("ignored", "ignored", scored)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (9, 0, 3)
    # a backend that reports no context tokens: estimated from the text
    assert score_usage("x" * 40, "", Scored([], [], [])).prompt_tokens == 10
