"""Tests of the model-free backends in minsky.backends.fakes."""

from __future__ import annotations

import asyncio
import time

from minsky.backends.base import Backend, Capabilities
from minsky.backends.fakes import EchoBackend, FunctionBackend, ScriptedBackend
from minsky.messages import ChatRequest, Message, Options


def req(user: str = "hi", system: str | None = None, **options: object) -> ChatRequest:
    messages = [Message("system", system)] if system is not None else []
    messages.append(Message("user", user))
    return ChatRequest(messages, Options(**options))  # type: ignore[arg-type]


# -- ScriptedBackend: list mode ------------------------------------------------------------


async def test_list_mode_serves_replies_in_order_across_batches() -> None:
    backend = ScriptedBackend(["one", "two", "three"])
    first = await backend.complete([req("a"), req("b")])
    second = await backend.complete([req("c")])
    assert [r.text for r in first] == ["one", "two"]
    assert [r.text for r in second] == ["three"]
    assert all(r.finish_reason == "stop" and r.error is None for r in first + second)


async def test_list_mode_ignores_who_asks() -> None:
    backend = ScriptedBackend(["x", "y"])
    replies = await backend.complete([req(system="solver-2"), req(system="solver-1")])
    assert [r.text for r in replies] == ["x", "y"]


async def test_running_out_is_an_error_reply_not_an_exception() -> None:
    backend = ScriptedBackend(["only"])
    replies = await backend.complete([req(), req(), req()])
    assert replies[0].text == "only"
    assert replies[0].finish_reason == "stop"
    for reply in replies[1:]:
        assert reply.finish_reason == "error"
        assert reply.text == ""
        assert reply.error is not None and "no reply left" in reply.error
        assert reply.usage.prompt_tokens == 0 and reply.usage.completion_tokens == 0


async def test_empty_script_errors_at_once() -> None:
    replies = await ScriptedBackend([]).complete([req()])
    assert replies[0].finish_reason == "error"


# -- ScriptedBackend: dict mode ------------------------------------------------------------


async def test_dict_mode_keys_on_system_text() -> None:
    backend = ScriptedBackend({"alice": ["a1", "a2"], "bob": ["b1"]})
    replies = await backend.complete(
        [req(system="You are bob."), req(system="You are alice."), req(system="alice again")]
    )
    assert [r.text for r in replies] == ["b1", "a1", "a2"]


async def test_dict_mode_longest_key_wins() -> None:
    # "solver-1" is a substring of "solver-10": the longer key must be tried first,
    # whatever the insertion order of the dict
    backend = ScriptedBackend({"solver-1": ["one"], "solver-10": ["ten"]})
    replies = await backend.complete([req(system="I am solver-10"), req(system="I am solver-1")])
    assert [r.text for r in replies] == ["ten", "one"]


async def test_dict_mode_only_looks_at_system_messages() -> None:
    backend = ScriptedBackend({"alice": ["a1"]})
    replies = await backend.complete([req(user="alice", system="You are nobody.")])
    assert replies[0].finish_reason == "error"


async def test_dict_mode_unknown_agent_and_exhausted_script_are_errors() -> None:
    backend = ScriptedBackend({"alice": ["a1"]})
    replies = await backend.complete(
        [req(system="carol"), req(system="alice"), req(system="alice")]
    )
    assert [r.finish_reason for r in replies] == ["error", "stop", "error"]
    assert replies[1].text == "a1"


async def test_dict_mode_joins_several_system_messages() -> None:
    backend = ScriptedBackend({"bob": ["hello"]})
    request = ChatRequest(
        [Message("system", "first"), Message("system", "bob"), Message("user", "q")]
    )
    assert (await backend.complete([request]))[0].text == "hello"


# -- recording -----------------------------------------------------------------------------


async def test_records_each_batch_as_received() -> None:
    backend = ScriptedBackend(["1", "2", "3"])
    r1, r2, r3 = req("a"), req("b"), req("c")
    await backend.complete([r1, r2])
    await backend.complete([r3])
    assert len(backend.batches) == 2
    assert backend.batches[0] == [r1, r2]
    assert backend.batches[1] == [r3]
    assert backend.requests == [r1, r2, r3]


async def test_recorded_batch_is_a_copy_of_the_callers_list() -> None:
    backend = FunctionBackend(lambda r: "ok")
    batch = [req("a")]
    await backend.complete(batch)
    batch.append(req("b"))
    assert len(backend.batches[0]) == 1


async def test_empty_batch_is_recorded_and_answered_empty() -> None:
    backend = EchoBackend()
    assert await backend.complete([]) == []
    assert backend.batches == [[]]


# -- FunctionBackend and EchoBackend -------------------------------------------------------


async def test_function_backend_applies_fn_to_each_request() -> None:
    seen: list[ChatRequest] = []

    def fn(request: ChatRequest) -> str:
        seen.append(request)
        return request.messages[-1].content.upper()

    backend = FunctionBackend(fn)
    requests = [req("abc"), req("de f")]
    replies = await backend.complete(requests)
    assert [r.text for r in replies] == ["ABC", "DE F"]
    assert seen == requests


async def test_echo_backend_repeats_the_last_user_message() -> None:
    request = ChatRequest(
        [
            Message("system", "sys"),
            Message("user", "first question"),
            Message("assistant", "an answer"),
            Message("user", "second question"),
        ]
    )
    replies = await EchoBackend().complete([request])
    assert replies[0].text == "second question"


async def test_echo_backend_without_user_message_says_nothing() -> None:
    replies = await EchoBackend().complete([ChatRequest([Message("system", "only system")])])
    assert replies[0].text == ""
    assert replies[0].finish_reason == "stop"


async def test_delay_is_awaited_without_blocking_the_loop() -> None:
    a, b = FunctionBackend(lambda r: "a", delay_s=0.1), FunctionBackend(lambda r: "b", delay_s=0.1)
    start = time.perf_counter()
    got = await asyncio.gather(a.complete([req()]), b.complete([req()]))
    elapsed = time.perf_counter() - start
    assert [g[0].text for g in got] == ["a", "b"]
    assert 0.09 <= elapsed < 0.19


# -- capabilities --------------------------------------------------------------------------


def test_default_capabilities() -> None:
    assert ScriptedBackend([]).capabilities.grammar is True
    assert ScriptedBackend([]).capabilities.json_schema is True
    assert FunctionBackend(lambda r: "").capabilities.grammar is True
    assert EchoBackend().capabilities.grammar is False
    assert EchoBackend().capabilities == Capabilities()


def test_capabilities_can_be_overridden_per_instance() -> None:
    plain = ScriptedBackend([], capabilities=Capabilities())
    assert plain.capabilities.grammar is False
    # the class default is untouched
    assert ScriptedBackend([]).capabilities.grammar is True
    echo = EchoBackend(capabilities=Capabilities(grammar=True))
    assert echo.capabilities.grammar is True


def test_fakes_are_backends_with_names() -> None:
    for backend, name in (
        (ScriptedBackend([]), "scripted"),
        (FunctionBackend(lambda r: ""), "function"),
        (EchoBackend(), "echo"),
    ):
        assert isinstance(backend, Backend)
        assert backend.describe() == name


# -- token accounting, max_tokens and stop strings -----------------------------------------


async def test_usage_counts_whitespace_separated_words() -> None:
    request = ChatRequest(
        [Message("system", "you are  a\tbot"), Message("user", "what is\n2 + 3")]
    )
    reply = (await ScriptedBackend(["The answer is   5."]).complete([request]))[0]
    assert reply.usage.prompt_tokens == 4 + 5
    assert reply.usage.completion_tokens == 4
    assert reply.usage.cached_tokens == 0
    assert reply.usage.total_tokens == 13


async def test_max_tokens_truncates_to_that_many_words_with_finish_length() -> None:
    backend = ScriptedBackend(["one two three four five"])
    reply = (await backend.complete([req(max_tokens=3)]))[0]
    assert reply.text == "one two three"
    assert reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 3


async def test_exactly_max_tokens_words_is_not_truncated() -> None:
    reply = (await ScriptedBackend(["one two three"]).complete([req(max_tokens=3)]))[0]
    assert reply.text == "one two three"
    assert reply.finish_reason == "stop"


async def test_stop_string_cuts_the_text_before_it() -> None:
    backend = ScriptedBackend(["The answer is 5.\nUser: thanks"])
    reply = (await backend.complete([req(stop=["\nUser:"])]))[0]
    assert reply.text == "The answer is 5."
    assert reply.finish_reason == "stop"
    assert reply.usage.completion_tokens == 4


async def test_earliest_of_several_stop_strings_wins() -> None:
    backend = ScriptedBackend(["alpha STOP beta END gamma", "alpha END beta STOP gamma"])
    replies = await backend.complete([req(stop=["END", "STOP"]), req(stop=["END", "STOP"])])
    assert replies[0].text.strip() == "alpha"
    assert replies[1].text.strip() == "alpha"


async def test_empty_stop_string_is_ignored() -> None:
    reply = (await ScriptedBackend(["keep all of this"]).complete([req(stop=[""])]))[0]
    assert reply.text == "keep all of this"


async def test_absent_stop_string_changes_nothing() -> None:
    reply = (await EchoBackend().complete([req("a b c", stop=["zzz"])]))[0]
    assert reply.text == "a b c"
    assert reply.finish_reason == "stop"


async def test_stop_string_before_the_limit_finishes_with_stop() -> None:
    # a real model would have stopped at STOP after 2 words, well inside max_tokens=4
    backend = ScriptedBackend(["a b STOP c d e f"])
    reply = (await backend.complete([req(max_tokens=4, stop=["STOP"])]))[0]
    assert reply.text.strip() == "a b"
    assert reply.finish_reason == "stop"


# -- the switch that keeps unit tests off real models -------------------------------------


def test_a_unit_test_cannot_load_a_real_model(tmp_path) -> None:
    import asyncio

    import pytest

    from minsky.backends.llama import LlamaBackend
    from minsky.errors import MinskyError
    from minsky.messages import ChatRequest, Message

    backend = LlamaBackend(tmp_path / "any.gguf")
    with pytest.raises(MinskyError, match="real models are switched off"):
        asyncio.run(backend.complete([ChatRequest([Message("user", "hi")])]))


def test_a_unit_test_cannot_reach_a_model_server_off_this_machine(monkeypatch) -> None:
    import pytest

    from minsky.backends.registry import Backends
    from minsky.errors import MinskyError

    monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", "https://api.example.com/v1")
    with pytest.raises(MinskyError, match="real models are switched off"):
        Backends().get("openai:gpt-x")
    monkeypatch.setenv("MINSKY_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # a test's fake
    assert Backends().get("openai:gpt-x").describe() == "openai:gpt-x@http://127.0.0.1:9/v1"
