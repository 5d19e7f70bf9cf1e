"""The Runner on scripted fake backends: batching, seeds, budgets, logging and resume."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from minsky.backends.base import Backend, Capabilities
from minsky.backends.fakes import EchoBackend, FunctionBackend, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Message
from minsky.organisations.base import Ask, Organisation, Outcome, Round, SocietyView, Task
from minsky.runlog import RunLog
from minsky.runner import Runner, RunResult
from minsky.society import Society

Q = "What is 2+3?"
GOOD = "The answer is 5."
ROLE = "You are a careful problem solver."


def runner(backends: dict[str, Backend], log: RunLog | None = None) -> Runner:
    return Runner(Backends(overrides=backends), log)


def vote_society(
    make_society: Callable[..., Society], count: int = 5, **kwargs: Any
) -> Society:
    options = kwargs.pop("options", {"temperature": 0.7, "max_tokens": 64, "seed": 0})
    agents = [{"name": "solver", "role": ROLE, "count": count, "options": options}]
    return make_society(agents=agents, **kwargs)


# -- batching ------------------------------------------------------------------------------


async def test_one_round_is_one_batch_per_backend(make_society, log) -> None:
    backend = ScriptedBackend([GOOD] * 5)
    result = await runner({"fake:a": backend}, log).run(vote_society(make_society), Q)
    assert result.status == "ok"
    assert result.answer == "5"
    assert len(backend.batches) == 1
    assert len(backend.batches[0]) == 5
    assert [m.name for m in result.outcome.members] == [f"solver-{i}" for i in range(1, 6)]


async def test_members_on_two_models_run_concurrently(make_society, log) -> None:
    def answer(request: ChatRequest) -> str:
        return "The answer is 5." if "alpha" in request.messages[0].content else "#### 6"

    a = FunctionBackend(answer, delay_s=0.2)
    b = FunctionBackend(answer, delay_s=0.2)
    society = make_society(
        agents=[
            {"name": "alpha", "role": "You are alpha.", "count": 2, "model": "fake:a"},
            {"name": "beta", "role": "You are beta.", "count": 3, "model": "fake:b"},
        ]
    )
    start = time.perf_counter()
    result = await runner({"fake:a": a, "fake:b": b}, log).run(society, Q)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.35, f"backends were not called concurrently ({elapsed:.2f} s)"
    assert result.status == "ok"
    assert [len(batch) for batch in a.batches] == [2]
    assert [len(batch) for batch in b.batches] == [3]
    assert all(r.messages[0].content == "You are alpha." for r in a.requests)
    assert all(r.messages[0].content == "You are beta." for r in b.requests)
    # turns come back in the order of the asks, whatever backend answered them
    assert [(m.name, m.answer) for m in result.outcome.members] == [
        ("alpha-1", "5"), ("alpha-2", "5"), ("beta-1", "6"), ("beta-2", "6"), ("beta-3", "6"),
    ]
    assert result.answer == "6"


async def test_one_backend_object_per_model_spec(make_society) -> None:
    backend = ScriptedBackend([GOOD] * 4)
    society = make_society(
        agents=[
            {"name": "x", "count": 2, "model": "fake:a"},
            {"name": "y", "count": 2, "model": "fake:a"},
        ]
    )
    await runner({"fake:a": backend}).run(society, Q)
    assert [len(b) for b in backend.batches] == [4]


async def test_requests_carry_the_members_options_and_distinct_seeds(make_society) -> None:
    backend = ScriptedBackend([GOOD] * 5)
    options = {"temperature": 0.9, "top_p": 0.5, "max_tokens": 77, "seed": 100}
    await runner({"fake:a": backend}).run(vote_society(make_society, options=options), Q)
    requests = backend.requests
    assert [r.options.seed for r in requests] == [100, 101, 102, 103, 104]
    assert {r.options.temperature for r in requests} == {0.9}
    assert {r.options.top_p for r in requests} == {0.5}
    assert {r.options.max_tokens for r in requests} == {77}
    assert all(r.grammar is None for r in requests)


async def test_seeds_start_at_zero_without_a_seed(make_society) -> None:
    backend = ScriptedBackend([GOOD] * 5)
    await runner({"fake:a": backend}).run(vote_society(make_society, options={}), Q)
    assert [r.options.seed for r in backend.requests] == [0, 1, 2, 3, 4]


async def test_request_messages_are_system_role_and_user_question(make_society) -> None:
    backend = ScriptedBackend([GOOD])
    await runner({"fake:a": backend}).run(vote_society(make_society, count=1), Q)
    (request,) = backend.requests
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0] == Message("system", ROLE)
    assert request.messages[1].content.startswith(Q)


async def test_repair_round_is_a_second_batch_with_a_grammar(make_society, log) -> None:
    backend = ScriptedBackend(
        {f"solver-{i}": [GOOD] for i in (1, 3)} | {"solver-2": ["hmm", "5"]}
    )
    society = make_society(
        agents=[{"name": f"solver-{i}", "role": f"You are solver-{i}."} for i in (1, 2, 3)]
    )
    result = await runner({"fake:a": backend}, log).run(society, Q)
    assert result.status == "ok"
    assert [len(b) for b in backend.batches] == [3, 1]
    repair = backend.batches[1][0]
    assert repair.grammar is not None and "root ::=" in repair.grammar
    assert [m.role for m in repair.messages] == ["system", "user", "assistant", "user"]
    assert repair.messages[2].content == "hmm"
    assert [r.label for r in result.rounds] == ["answer", "answer:repair"]
    assert [m.answer for m in result.outcome.members] == ["5", "5", "5"]


async def test_backend_without_grammar_members_are_not_repaired(make_society) -> None:
    backend = ScriptedBackend(["hmm"] * 3, capabilities=Capabilities())
    result = await runner({"fake:a": backend}).run(vote_society(make_society, count=3), Q)
    assert result.status == "ok"
    assert len(backend.batches) == 1
    assert result.answer is None


async def test_kind_argument_and_society_answer_override_detection(make_society) -> None:
    backend = ScriptedBackend(["The answer is B."])
    society = vote_society(make_society, count=1)
    result = await runner({"fake:a": backend}).run(society, "Pick: A) x B) y", kind="choice")
    assert result.kind == "choice"
    assert result.answer == "B"
    text_society = make_society(
        agents=[{"name": "s", "role": ROLE}], answer="text"
    )
    result = await runner({"fake:a": ScriptedBackend(["The answer is Paris."])}).run(
        text_society, "What is 2+3?"
    )
    assert result.kind == "text"
    assert result.answer == "paris"


async def test_progress_is_reported_per_round(make_society) -> None:
    seen: list[str] = []
    await runner({"fake:a": ScriptedBackend([GOOD] * 3)}).run(
        vote_society(make_society, count=3), Q, progress=seen.append
    )
    assert seen == ["round 1: answer (3 asks)"]


async def test_runs_without_a_log(make_society) -> None:
    result = await runner({"fake:a": ScriptedBackend([GOOD] * 3)}).run(
        vote_society(make_society, count=3), Q
    )
    assert result.status == "ok" and result.answer == "5"


# -- usage and the result ------------------------------------------------------------------


async def test_usage_is_the_sum_of_all_replies(make_society) -> None:
    backend = ScriptedBackend(["hmm hmm", "5", "The answer is 5."])
    society = make_society(agents=[{"name": "a"}, {"name": "b"}])
    result = await runner({"fake:a": backend}).run(society, Q)
    turns = [t for r in result.rounds for t in r.turns]
    assert len(turns) == 3
    assert result.usage.prompt_tokens == sum(t["prompt_tokens"] for t in turns)
    assert result.usage.completion_tokens == 2 + 1 + 4
    assert result.usage.prompt_tokens == sum(
        len(m.content.split()) for r in backend.requests for m in r.messages
    )


async def test_result_to_dict_has_the_stable_keys(make_society) -> None:
    result = await runner({"fake:a": ScriptedBackend([GOOD] * 3)}).run(
        vote_society(make_society, count=3), Q
    )
    assert isinstance(result, RunResult)
    data = result.to_dict()
    for key in ("run_id", "answer", "members", "usage", "wall_s", "status", "rounds"):
        assert key in data
    assert data["run_id"] == result.run_id and len(data["run_id"]) == 26
    assert data["answer"] == "5"
    assert data["status"] == "ok"
    assert data["error"] is None
    assert [(m["name"], m["answer"]) for m in data["members"]] == [
        ("solver-1", "5"), ("solver-2", "5"), ("solver-3", "5"),
    ]
    usage = data["usage"]
    assert usage["prompt_tokens"] == result.usage.prompt_tokens > 0
    assert usage["completion_tokens"] == 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(data["wall_s"], float) and 0 <= data["wall_s"] < 5
    assert data["tally"]["counts"] == {"5": 3}
    assert data["rounds"][0]["label"] == "answer"
    assert [t["agent"] for t in data["rounds"][0]["turns"]] == ["solver-1", "solver-2", "solver-3"]


async def test_run_ids_are_unique_and_sort_by_time(make_society) -> None:
    r = runner({"fake:a": ScriptedBackend([GOOD] * 10)})
    society = vote_society(make_society, count=1)
    ids = [(await r.run(society, Q)).run_id for _ in range(10)]
    assert len(set(ids)) == 10
    assert ids == sorted(ids)


# -- budgets -------------------------------------------------------------------------------


async def test_max_rounds_stops_a_run_that_wants_a_repair_round(make_society, log) -> None:
    backend = ScriptedBackend(["I am not sure"] * 10)
    society = vote_society(make_society, budget={"max_rounds": 1})
    result = await runner({"fake:a": backend}, log).run(society, Q)
    assert result.status == "max_rounds"
    assert len(backend.batches) == 1  # the repair round was never sent
    assert result.answer is None
    assert result.outcome.detail == {"stopped": True}
    assert [m.text for m in result.outcome.members] == ["I am not sure"] * 5
    run = log.get_run(result.run_id)
    assert run["status"] == "max_rounds"
    assert run["events"] == [
        {"round": 2, "kind": "budget", "data": {"status": "max_rounds", "round": "answer:repair"}}
    ]
    assert len(run["calls"]) == 5


async def test_max_tokens_caps_each_ask_and_stops_the_run(make_society, log) -> None:
    backend = ScriptedBackend(["word " * 50] * 10)
    society = vote_society(make_society, budget={"max_tokens": 100})
    result = await runner({"fake:a": backend}, log).run(society, Q)
    # 100 tokens left, 5 asks: each may write at most 20
    assert {r.options.max_tokens for r in backend.requests} == {20}
    assert all(t["finish_reason"] == "length" for t in result.rounds[0].turns)
    assert all(t["completion_tokens"] == 20 for t in result.rounds[0].turns)
    assert result.status == "max_tokens"
    assert len(backend.batches) == 1
    run = log.get_run(result.run_id)
    assert run["status"] == "max_tokens"
    assert [e["data"]["status"] for e in run["events"]] == ["max_tokens"]


async def test_max_tokens_cap_never_raises_the_members_own_limit(make_society) -> None:
    backend = ScriptedBackend([GOOD] * 5)
    society = vote_society(
        make_society, budget={"max_tokens": 100_000},
        options={"max_tokens": 30, "temperature": 0.7},
    )
    await runner({"fake:a": backend}).run(society, Q)
    assert {r.options.max_tokens for r in backend.requests} == {30}


async def test_timeout_stops_a_slow_backend_quickly(make_society, log) -> None:
    backend = FunctionBackend(lambda r: GOOD, delay_s=5)
    society = vote_society(make_society, budget={"timeout_s": 0.2})
    start = time.perf_counter()
    result = await asyncio.wait_for(runner({"fake:a": backend}, log).run(society, Q), 4)
    elapsed = time.perf_counter() - start
    assert elapsed < 2
    assert result.status == "timeout"
    assert result.answer is None
    run = log.get_run(result.run_id)
    assert run["status"] == "timeout"
    assert run["events"][0]["kind"] == "budget"
    assert run["events"][0]["data"]["status"] == "timeout"
    assert run["finished_at"] is not None


async def test_all_replies_erroring_is_status_error(make_society, log) -> None:
    backend = ScriptedBackend([])
    result = await runner({"fake:a": backend}, log).run(vote_society(make_society), Q)
    assert result.status == "error"
    assert result.error == "scripted backend: no reply left"
    assert result.answer is None
    assert len(backend.batches) == 1  # no repair round after a total failure
    run = log.get_run(result.run_id)
    assert run["status"] == "error"
    assert [e["kind"] for e in run["events"]] == ["error"]
    assert len(run["events"][0]["data"]["errors"]) == 5


async def test_some_replies_erroring_is_not_a_failed_run(make_society) -> None:
    # 5 members: the last two get errors; no grammar, so no repair round
    backend = ScriptedBackend([GOOD, GOOD, GOOD], capabilities=Capabilities())
    result = await runner({"fake:a": backend}).run(vote_society(make_society), Q)
    assert result.answer == "5"
    assert result.status == "ok"
    assert [m.answer for m in result.outcome.members] == ["5", "5", "5", None, None]


async def test_cancelled_run_is_logged_as_interrupted(make_society, log) -> None:
    backend = FunctionBackend(lambda r: GOOD, delay_s=5)
    task = asyncio.create_task(runner({"fake:a": backend}, log).run(vote_society(make_society), Q))
    while not backend.batches:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (row,) = log.list_runs()
    assert row["status"] == "interrupted"


# -- the run log ---------------------------------------------------------------------------


async def test_run_log_has_every_message_and_call(make_society, log) -> None:
    backend = ScriptedBackend([GOOD] * 3)
    society = vote_society(make_society, count=3)
    result = await runner({"fake:a": backend}, log).run(society, Q)
    run = log.get_run(result.run_id)
    assert run["id"] == result.run_id
    assert run["status"] == "ok"
    assert run["answer"] == "5"
    assert run["question"] == Q
    assert run["kind"] == "number"
    # the society's validated config, as `ask --resume` rebuilds it
    assert run["society"] == "test"
    assert run["society_config"]["name"] == "test"
    assert run["society_config"]["organisation"] == "vote"
    assert run["society_config"]["agents"][0]["count"] == 3
    assert run["models"] == {"fake:a": "scripted"}
    assert run["prompt_tokens"] == result.usage.prompt_tokens
    assert run["completion_tokens"] == result.usage.completion_tokens
    assert run["outcome"]["answer"] == "5"
    assert [r["label"] for r in run["rounds"]] == ["answer"]
    calls = run["calls"]
    assert [(c["round"], c["idx"], c["agent"]) for c in calls] == [
        (1, 0, "solver-1"), (1, 1, "solver-2"), (1, 2, "solver-3"),
    ]
    assert all(c["text"] == GOOD and c["replayed"] == 0 for c in calls)
    assert all(c["backend"] == "scripted" and c["purpose"] == "answer" for c in calls)
    assert calls[1]["request"]["options"]["seed"] == 1
    messages = run["messages"]
    assert len(messages) == 9
    for call, chunk in zip(calls, [messages[i : i + 3] for i in (0, 3, 6)], strict=True):
        assert [m["role"] for m in chunk] == ["system", "user", "assistant"]
        assert {m["call_id"] for m in chunk} == {call["id"]}
        assert {m["agent"] for m in chunk} == {call["agent"]}
        assert chunk[0]["content"] == ROLE
        assert chunk[1]["content"].startswith(Q)
        assert chunk[2]["content"] == GOOD


async def test_run_log_keeps_both_rounds(make_society, log) -> None:
    backend = ScriptedBackend({"solver-1": ["hmm", "7"]})
    society = make_society(agents=[{"name": "solver-1", "role": "You are solver-1."}])
    result = await runner({"fake:a": backend}, log).run(society, Q)
    run = log.get_run(result.run_id)
    assert [(c["round"], c["purpose"]) for c in run["calls"]] == [(1, "answer"), (2, "repair")]
    assert [m["role"] for m in run["messages"]] == [
        "system", "user", "assistant",
        "system", "user", "assistant", "user", "assistant",
    ]
    assert run["calls"][1]["request"]["grammar"] is not None
    assert run["answer"] == "7"


# -- resume --------------------------------------------------------------------------------


async def test_resume_replays_logged_replies(make_society, log) -> None:
    society = vote_society(make_society)
    first = await runner({"fake:a": ScriptedBackend([GOOD, GOOD, GOOD, "#### 4", "#### 4"])},
                         log).run(society, Q)
    assert first.status == "ok" and first.answer == "5"

    other = ScriptedBackend(["The answer is 9."] * 5)
    again = await runner({"fake:a": other}, log).run(society, Q, resume=first.run_id)
    assert other.batches == []
    assert again.run_id == first.run_id
    assert again.answer == first.answer
    assert [(m.name, m.answer, m.text) for m in again.outcome.members] == [
        (m.name, m.answer, m.text) for m in first.outcome.members
    ]
    assert again.usage == first.usage
    run = log.get_run(first.run_id)
    assert len(run["calls"]) == 5
    assert all(c["replayed"] == 1 for c in run["calls"])
    assert len(run["messages"]) == 15
    assert [r["round"] for r in run["rounds"]] == [1]
    assert run["status"] == "ok"
    assert len(log.list_runs()) == 1


async def test_resume_replays_both_rounds(make_society, log) -> None:
    society = make_society(agents=[{"name": "solver-1", "role": "You are solver-1."}])
    first = await runner({"fake:a": ScriptedBackend(["hmm", "7"])}, log).run(society, Q)
    assert len(first.rounds) == 2
    other = ScriptedBackend(["The answer is 9."] * 2)
    again = await runner({"fake:a": other}, log).run(society, Q, resume=first.run_id)
    assert other.batches == []
    assert again.answer == "7"
    assert [c["replayed"] for c in log.get_run(first.run_id)["calls"]] == [1, 1]


async def test_resume_asks_again_only_what_failed(make_society, log) -> None:
    society = vote_society(make_society)
    # 3 of 5 members answer, the calls of the other two fail
    first = await runner({"fake:a": ScriptedBackend([GOOD] * 3)}, log).run(society, Q)
    assert [m.answer for m in first.outcome.members] == ["5", "5", "5", None, None]

    other = ScriptedBackend(["#### 6", "#### 6"])
    again = await runner({"fake:a": other}, log).run(society, Q, resume=first.run_id)
    assert [len(b) for b in other.batches] == [2]
    assert [r.options.seed for r in other.requests] == [3, 4]
    assert again.status == "ok"
    assert [m.answer for m in again.outcome.members] == ["5", "5", "5", "6", "6"]
    calls = log.get_run(first.run_id)["calls"]
    assert [c["replayed"] for c in calls] == [1, 1, 1, 0, 0]
    assert [c["finish_reason"] for c in calls] == ["stop"] * 5


async def test_resume_clears_the_old_failure(make_society, log) -> None:
    society = vote_society(make_society)
    first = await runner({"fake:a": ScriptedBackend([])}, log).run(society, Q)
    assert first.status == "error"
    assert [e["kind"] for e in log.get_run(first.run_id)["events"]] == ["error"]
    other = ScriptedBackend([GOOD] * 5)
    again = await runner({"fake:a": other}, log).run(society, Q, resume=first.run_id)
    assert [len(b) for b in other.batches] == [5]
    assert again.status == "ok" and again.answer == "5"
    run = log.get_run(first.run_id)
    assert run["events"] == []
    assert run["status"] == "ok"
    assert [c["replayed"] for c in run["calls"]] == [0] * 5


async def test_resume_needs_a_log(make_society) -> None:
    with pytest.raises(MinskyError, match="resume"):
        await runner({"fake:a": ScriptedBackend([])}).run(
            vote_society(make_society), Q, resume="01ABC"
        )


async def test_resume_of_an_unknown_run(make_society, log) -> None:
    with pytest.raises(MinskyError, match="NOSUCHRUN"):
        await runner({"fake:a": ScriptedBackend([])}, log).run(
            vote_society(make_society), Q, resume="NOSUCHRUN"
        )


# -- custom organisations through the runner -----------------------------------------------


def with_organisation(society: Society, run: Callable[[Task, SocietyView], Any]) -> Society:
    org = Organisation("custom", run, society.organisation.params)
    return dataclasses.replace(society, organisation=org)


async def test_max_rounds_counts_every_round(make_society, log) -> None:
    def chatty(task: Task, view: SocietyView):
        for i in range(10):
            yield Round(f"r{i}", [Ask(view.members[0].name, [Message("user", "go")])])
        return Outcome("done")

    society = with_organisation(
        make_society(agents=[{"name": "a"}], budget={"max_rounds": 3}), chatty
    )
    backend = EchoBackend()
    result = await runner({"fake:a": backend}, log).run(society, Q)
    assert result.status == "max_rounds"
    assert len(backend.batches) == 3
    assert [r.label for r in result.rounds] == ["r0", "r1", "r2"]
    assert log.get_run(result.run_id)["events"][0]["round"] == 4


async def test_unknown_member_is_a_minsky_error(make_society) -> None:
    def rogue(task: Task, view: SocietyView):
        yield Round("x", [Ask("nobody", [Message("user", "hi")])])
        return Outcome(None)

    society = with_organisation(make_society(agents=[{"name": "a"}]), rogue)
    with pytest.raises(MinskyError, match="nobody"):
        await runner({"fake:a": EchoBackend()}).run(society, Q)


async def test_ask_options_override_the_members(make_society) -> None:
    from minsky.messages import Options

    def custom(task: Task, view: SocietyView):
        yield Round("x", [Ask("a", [Message("user", "hi")], options=Options(max_tokens=3))])
        return Outcome("ok")

    backend = EchoBackend()
    society = with_organisation(
        make_society(agents=[{"name": "a", "options": {"max_tokens": 50, "seed": 7}}]), custom
    )
    await runner({"fake:a": backend}).run(society, Q)
    assert backend.requests[0].options.max_tokens == 3
    assert backend.requests[0].options.seed is None


class Exploding(Backend):
    name = "exploding"

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        raise RuntimeError("backend bug")


async def test_a_crashed_run_is_not_logged_as_ok(make_society, log) -> None:
    with pytest.raises(RuntimeError):
        await runner({"fake:a": Exploding()}, log).run(vote_society(make_society), Q)
    (row,) = log.list_runs()
    assert row["status"] != "ok"


async def test_backends_close_every_backend() -> None:
    closed: list[str] = []

    class Closing(EchoBackend):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag

        async def aclose(self) -> None:
            closed.append(self.tag)

    backends = Backends(overrides={"a": Closing("a"), "b": Closing("b")})
    assert backends.get("a").tag == "a"  # type: ignore[attr-defined]
    await backends.aclose()
    assert sorted(closed) == ["a", "b"]


def test_backends_build_echo_from_its_scheme() -> None:
    backend = Backends().get("echo:anything")
    assert isinstance(backend, EchoBackend)
    assert Backends().get("echo:anything") is not backend  # each pool builds its own
    backends = Backends()
    assert backends.get("echo:x") is backends.get("echo:x")  # one per spec per pool


def test_backends_build_echo_from_the_bare_scheme() -> None:
    assert isinstance(Backends().get("echo:"), EchoBackend)


def test_unknown_model_spec_is_a_minsky_error() -> None:
    with pytest.raises(MinskyError, match="not-a-model"):
        Backends().get("not-a-model")


async def test_replies_that_returned_are_logged_even_if_the_round_times_out(
    make_society, log
) -> None:
    fast = ScriptedBackend([GOOD, GOOD])
    slow = FunctionBackend(lambda r: GOOD, delay_s=5)
    society = make_society(
        agents=[
            {"name": "quick", "count": 2, "model": "fake:a"},
            {"name": "sluggish", "model": "fake:b"},
        ],
        budget={"timeout_s": 0.3},
    )
    result = await runner({"fake:a": fast, "fake:b": slow}, log).run(society, Q)
    assert result.status == "timeout"
    calls = log.get_run(result.run_id)["calls"]
    assert sorted(c["agent"] for c in calls) == ["quick-1", "quick-2"]


async def test_a_choice_question_offers_only_its_own_letters(make_society) -> None:
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return "The answer is E."  # a letter this question does not offer

    society = vote_society(make_society, count=1)
    question = "Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nC) helium\nD) neon"
    result = await runner({"fake:a": FunctionBackend(reply)}).run(society, question)
    prompt = seen[0].messages[-1].content
    assert 'one of the letters A, B, C, D.' in prompt
    assert result.answer is None  # "E" is not an answer to a four-option question


# -- the gate, the pump, events, closing ------------------------------------------------


def test_only_the_runner_the_tool_loop_and_backends_call_a_model() -> None:
    """`.complete(` — a model call — and `.score(` — a scoring call — appear only where
    every call is logged and budgeted (a run's own `.score(` is that gate)."""
    import re
    from pathlib import Path

    import minsky

    root = Path(minsky.__file__).parent

    def callers(pattern: str) -> set[str]:
        found = {str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(pattern, p.read_text(encoding="utf-8"))}
        return {c for c in found if not c.startswith("backends/")}

    # serve/conversation.py is itself a backend (it wraps the one the runner calls, adding
    # the client's earlier turns), so its call is the runner's call
    assert callers(r"\.complete\(") == {"runner.py", "direct.py", "tools/calls.py",
                                        "serve/conversation.py"}
    assert callers(r"(?<!\brun)\.score\(") == {"direct.py"}


def test_every_function_in_the_runner_fits_on_a_screen() -> None:
    import ast
    import inspect

    import minsky.runner

    tree = ast.parse(inspect.getsource(minsky.runner))
    long = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 >= 60}
    assert long == {}


def test_drive_runs_an_organisation_without_a_runner(make_society) -> None:
    from minsky.organisations.base import Turn, drive

    society = vote_society(make_society, count=3)
    view = SocietyView(society.members({}), society.params)
    rounds, outcome = drive(society.organisation.run(Task(Q), view),
                            lambda rnd: [Turn(a, ChatReply(GOOD)) for a in rnd.asks])
    assert [r.label for r in rounds] == ["answer"]
    assert outcome.answer == "5"


async def test_observers_see_typed_events_in_order(make_society) -> None:
    from minsky.run_events import CallDone, RoundStarted, RunFinished, RunStarted

    seen: list[object] = []
    r = Runner(Backends(overrides={"fake:a": ScriptedBackend([GOOD] * 3)}),
               observers=[seen.append])
    result = await r.run(vote_society(make_society, count=3), Q)
    kinds = [type(e) for e in seen]
    assert kinds == [RunStarted, RoundStarted, CallDone, CallDone, CallDone, RunFinished]
    finished = seen[-1]
    assert isinstance(finished, RunFinished) and finished.run_id == result.run_id
    assert finished.status == "ok"


async def test_async_with_closes_the_backends(make_society) -> None:
    closed: list[str] = []

    class Closing(ScriptedBackend):
        async def aclose(self) -> None:
            closed.append("yes")

    async with Runner(Backends(overrides={"fake:a": Closing([GOOD] * 3)})) as r:
        await r.run(vote_society(make_society, count=3), Q)
        assert closed == []
    assert closed == ["yes"]


async def test_auto_answer_kind_is_guessed_once_from_the_question(make_society) -> None:
    r = runner({"fake:a": ScriptedBackend(["The answer is B."] * 3)})
    society = vote_society(make_society, count=3)
    result = await r.run(society, "Which? A) one B) two\nA) one\nB) two", "auto")
    assert result.kind == "choice"
    with pytest.raises(ValueError, match="answer kind 'letter'"):
        await r.run(society, Q, "letter")


async def test_raw_calls_are_logged_as_a_run(log) -> None:
    from minsky.messages import Options

    backend = ScriptedBackend(["x", "y"])
    r = runner({"fake:a": backend}, log)
    requests = [ChatRequest([Message("user", "hi")], Options(seed=s)) for s in range(2)]
    replies = await r.call("fake:a", requests, "sampling")
    assert [x.text for x in replies] == ["x", "y"]
    (run,) = log.list_runs()
    shown = log.get_run(run["id"])
    assert shown["society"] == "sampling" and shown["status"] == "ok"
    assert [c["text"] for c in shown["calls"]] == ["x", "y"]
