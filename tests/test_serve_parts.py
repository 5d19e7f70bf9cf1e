"""The parts of `minsky serve` without a server: request parsing, the conversation's
mapping onto members' prompts, per-choice options, admission control."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from minsky.messages import ChatRequest, Message
from minsky.organisations.base import Outcome
from minsky.runner import RunResult
from minsky.serve.choices import for_choice
from minsky.serve.conversation import Conversation
from minsky.serve.protocol import ApiError, ChatMessage, content, finish_reason, parse_request
from minsky.serve.slots import Full, Slots


def parse(**body: Any) -> Any:
    body.setdefault("model", "vote3")
    body.setdefault("messages", [{"role": "user", "content": "What is 6*7?"}])
    return parse_request(json.dumps(body).encode())


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": []}, "messages"),
    ({"stop": 5}, "stop"),
    ({"stream_options": {"x": 1}}, "stream_options.x"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"n": 0}, "n"),
])
def test_bad_bodies_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as err:
        parse(**body)
    assert err.value.status == 400 and err.value.param == param
    assert err.value.body()["error"]["param"] == param


def test_neutral_values_of_unsupported_fields_are_accepted() -> None:
    req = parse(logprobs=False, tool_choice="none", presence_penalty=0, tools=[],
                response_format={"type": "text"}, parallel_tool_calls=True)
    assert req.model == "vote3"


def test_not_json_is_a_400() -> None:
    with pytest.raises(ApiError, match="not valid JSON"):
        parse_request(b"{")


def conversation(*messages: tuple[str, str]) -> Conversation:
    return Conversation.from_messages([ChatMessage(role=r, content=c)  # type: ignore[arg-type]
                                       for r, c in messages])


def test_conversation_adds_instructions_and_turns_to_any_request() -> None:
    conv = conversation(("developer", "Be brief."), ("user", "Hi"), ("assistant", "Hello"),
                        ("user", "What is 6*7?"))
    assert conv.question == "What is 6*7?"
    with_system = conv.apply(ChatRequest([Message("system", "You vote."),
                                          Message("user", "Q?")]))
    assert with_system.messages == [Message("system", "You vote.\n\nBe brief."),
                                    Message("user", "Hi"), Message("assistant", "Hello"),
                                    Message("user", "Q?")]
    without = conv.apply(ChatRequest([Message("user", "Q?")]))
    assert without.messages[0] == Message("system", "Be brief.")
    assert conversation(("user", "Q?")).is_plain


def test_conversation_must_end_with_a_user_question() -> None:
    with pytest.raises(ApiError) as err:
        conversation(("user", "Q?"), ("assistant", "A"))
    assert err.value.param == "messages[1].role"
    with pytest.raises(ApiError) as err:
        conversation(("user", "  "))
    assert err.value.param == "messages[0].content"


def test_choices_get_sampling_seeds_and_budget(make_society) -> None:
    soc = make_society(agents=[{"name": "solver", "count": 2,
                                "options": {"temperature": 0.7, "seed": 100}},
                               {"name": "team", "society": "vote3"}],
                       budget={"max_tokens": 1000})
    req = parse(temperature=0.2, seed=5, max_tokens=300)
    first, second = for_choice(soc, req, 0), for_choice(soc, req, 1)
    assert [(a.options.temperature, a.options.seed) for a in first.agents[:2]] == [
        (0.2, 5), (0.2, 6)]
    assert [a.options.seed for a in second.agents[:2]] == [8, 9]  # shifted by 3 members
    assert first.agents[2] is soc.agents[2]  # a member that is a society keeps its own
    assert first.config.budget.max_tokens == 300
    untouched = for_choice(soc, parse(max_tokens=5000), 0)
    assert untouched.config.budget.max_tokens == 1000
    assert [a.options.seed for a in untouched.agents[:2]] == [100, 101]


def result(status: str, answer: str | None, text: str | None = None) -> RunResult:
    from minsky.messages import Usage

    return RunResult("R", "s", "q", "text", status, Outcome(answer, text=text),  # type: ignore[arg-type]
                     Usage(), 0.0, [])


def test_content_and_finish_reason() -> None:
    assert content(result("ok", "42"), []) == "42"
    assert content(result("ok", None, "Long answer. END more"), ["END"]) == "Long answer. "
    assert finish_reason(result("ok", "42")) == "stop"
    for status in ("max_tokens", "max_rounds", "timeout"):
        assert finish_reason(result(status, None)) == "length"


def test_a_stopped_run_answers_what_its_members_lead_with() -> None:
    from minsky.messages import Usage
    from minsky.organisations.base import MemberAnswer

    def stopped(*texts: str) -> RunResult:
        members = [MemberAnswer(f"m{i}", None, t) for i, t in enumerate(texts)]
        return RunResult("R", "s", "q", "number", "max_tokens",
                         Outcome(None, members, detail={"stopped": True}), Usage(), 0.0, [])

    assert content(stopped("The answer is 7.", "It is 42.", "The answer is 42."), []) == "42"
    assert content(stopped("", "Let me think"), []) == "Let me think"  # no number yet
    assert content(stopped(), []) == ""


async def test_slots_queue_wait_and_refuse() -> None:
    slots = Slots(limit=2, queue=1, wait_s=5.0)
    await slots.acquire(2)
    waiter = asyncio.create_task(slots.acquire(1))
    await asyncio.sleep(0.01)
    assert slots.waiting == 1
    with pytest.raises(Full, match="waiting"):
        await slots.acquire(1)  # the queue (1) is full
    slots.release(1, wall_s=3.2)
    await asyncio.wait_for(waiter, 1.0)
    assert (slots.in_use, slots.waiting, slots.retry_after()) == (2, 0, 4)
    short = Slots(limit=1, queue=4, wait_s=0.05)
    await short.acquire(1)
    with pytest.raises(Full, match="within"):
        await short.acquire(1)
    assert short.waiting == 0
