"""STaR mining, export and rounds plumbing, on scripted fakes (no model)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.evals.arena import preference_pairs
from minsky.evals.benchmarks import load_benchmark
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Backends, Runner
from minsky.society import load
from minsky.star.export import dpo_rows, sft_rows
from minsky.star.fresh import mine_fresh
from minsky.star.mine import (
    Exclusion,
    Reply,
    judge,
    program_key,
    read_mined,
    reporting_exclusion,
)
from minsky.star.rows import ChatTurn, SFTRow, read_rows

SOCIETY = Path(__file__).resolve().parents[1] / "benchmarks" / "societies" / "star-mine.toml"


def bench_file(path: Path, n: int = 6) -> Path:
    """A GSM8K-format file: problem k asks for k + 3 (apples and pears)."""
    with path.open("w") as f:
        for k in range(n):
            f.write(json.dumps({"question": f"Ann has {k} apples and 3 pears. How many "
                                f"fruits does she have? (case {k})",
                                "answer": f"She has {k}+3={k + 3}.\n#### {k + 3}"}) + "\n")
    return path


def numbers(question: str) -> tuple[int, int]:
    k, pears = re.findall(r"(\d+) apples and (\d+) pears", question)[0]
    return int(k), int(pears)


def reply_for(request: ChatRequest) -> str:
    """Programmers: right for even k, wrong for odd k unless hinted (then they compute
    it); a reasoner: right for k = 0 only."""
    user = request.messages[-1].content
    k, pears = numbers(user)
    if request.prefix.startswith("```python"):
        if k % 2 == 0 or "Hint" in user:
            return f"def solution():\n    apples = {k}\n    pears = {pears}\n" \
                   "    return apples + pears"
        return f"def solution():\n    return {k} * {pears}"
    return f"She has {k} + {pears} = {k + pears if k == 0 else 99}. The answer is " \
           f"{k + pears if k == 0 else 99}."


def test_program_key_ignores_names_comments_and_layout() -> None:
    a = "def solution():\n    apples = 3  # given\n    return apples * 2\n"
    b = "def solution():\n\n    x=3\n    return x*2"
    c = "def solution():\n    x = 3\n    return x * 3"
    assert program_key(a) == program_key(b)
    assert program_key(a) != program_key(c)


def _reply(question: str, text: str, hinted: bool = False, program: bool = True) -> Reply:
    from minsky.evals.formats import Case
    from minsky.star.mine import hinted_question

    case = Case("c1", question, "7", "number")
    asked = hinted_question(question, "7") if hinted else question
    messages = [ChatTurn(role="system", content="coder"), ChatTurn(role="user", content=asked)]
    return Reply(case, messages, text, "stop", program, "test", hinted=hinted)


def test_judge_keeps_right_programs_and_refuses_a_copied_hint() -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    right = judge(_reply(q, "```python\ndef solution():\n    return 4 + 3\n```"))
    assert right is not None and right.correct and right.kind == "program"
    assert right.reply == "```python\ndef solution():\n    return 4 + 3\n```"
    wrong = judge(_reply(q, "```python\ndef solution():\n    return 4 * 3\n```"))
    assert wrong is not None and not wrong.correct and wrong.answer == "12"
    # told the answer, a program that only writes it is refused
    assert judge(_reply(q, "```python\ndef solution():\n    return 7\n```", True)) is None
    hinted = judge(_reply(q, "```python\ndef solution():\n    return 4 + 3\n```", True))
    assert hinted is not None and hinted.correct and hinted.hinted
    # the kept row is trained as if no hint had been given
    assert hinted.messages[-1].content == q
    cot = judge(_reply(q, "4 + 3 = 7. The answer is 7.", program=False))
    assert cot is not None and cot.correct and cot.kind == "cot"


def test_mining_keeps_right_replies_and_rationalizes_the_rest(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl")
    cases = load_benchmark(bench)
    backend = FunctionBackend(reply_for)
    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:m": backend}), log)
    society = load(str(SOCIETY), "fake:m")
    excluded = Exclusion(ids={cases[5].id})  # never mined, whatever the log holds

    async def go() -> object:
        async with runner:
            return await mine_fresh(runner, log, society, cases, tmp_path / "mined.jsonl",
                                    excluded, concurrency=2)

    mined = asyncio.run(go())
    right = [r for r in mined.rows if r.correct]  # type: ignore[attr-defined]
    # even k: the four programmers write one distinct right program (one path, kept once)
    unhinted = {r.case for r in right if not r.hinted and r.kind == "program"}
    assert unhinted == {cases[0].id, cases[2].id, cases[4].id}
    assert sum(1 for r in right if r.case == cases[2].id and r.kind == "program") == 1
    assert not [r for r in mined.rows if r.kind == "cot"]  # type: ignore[attr-defined]
    # odd k: nobody solved them; asked again with the answer as a hint, they are kept
    assert {r.case for r in right if r.hinted} == {cases[1].id, cases[3].id}
    assert all("Hint" not in m.content for r in right for m in r.messages)
    assert cases[5].id not in {r.case for r in mined.rows}  # type: ignore[attr-defined]
    assert mined.stats.solved == 3 and mined.hint_stats.kept == 2  # type: ignore[attr-defined]
    # the wrong programs are kept once, for preference pairs
    assert {(r.kind, r.answer) for r in mined.rows  # type: ignore[attr-defined]
            if not r.correct and r.case == cases[1].id} == {("program", "3")}
    # a rerun computes nothing new: the results engine resumes
    calls = len(backend.requests)
    asyncio.run(go())
    assert len(backend.requests) == calls
    log.close()


def test_export_sft_and_dpo(tmp_path: Path) -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    rows = [judge(_reply(q, "```python\ndef solution():\n    return 4 + 3\n```")),
            judge(_reply(q, "```python\ndef solution():\n    return 4 * 3\n```"))]
    kept = [r for r in rows if r is not None]
    sft = sft_rows(kept, Exclusion())
    assert len(sft) == 1 and SFTRow.model_validate(sft[0])
    assert [m["role"] for m in sft[0]["messages"]] == ["system", "user", "assistant"]
    assert sft[0]["case"] == "c1" and sft[0]["kind"] == "program"
    dpo = dpo_rows(kept, Exclusion())
    assert len(dpo) == 1 and "4 + 3" in dpo[0]["chosen"][0]["content"]
    assert "4 * 3" in dpo[0]["rejected"][0]["content"]
    assert sft_rows(kept, Exclusion(ids={"c1"})) == []  # a reporting problem is dropped


def test_reporting_sample_is_excluded_by_id_and_text(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 520)
    excluded = reporting_exclusion(bench)
    cases = load_benchmark(bench)
    assert len(excluded.ids) == 500
    reported = load_benchmark(bench, limit=200, seed=0)
    assert all((c.id, c.question) in excluded for c in reported)
    assert ("other-id", reported[0].question.upper()) in excluded
    assert sum((c.id, c.question) not in excluded for c in cases) == 20


def test_cli_mine_from_a_pool_then_export(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 520)
    rest = [c for c in load_benchmark(bench)
            if (c.id, c.question) not in reporting_exclusion(bench)]
    reported = load_benchmark(bench, limit=200, seed=0)[0]
    pool = tmp_path / "pool.jsonl"
    with pool.open("w") as f:
        for case in (rest[0], rest[1], reported):
            k, pears = numbers(case.question)
            f.write(json.dumps({"case": case.id, "arm": "pot-greedy", "gold": case.answer,
                                "samples": [{"text": f"def solution():\n    return {k} + "
                                             f"{pears}", "finish": "stop"}]}) + "\n")
            f.write(json.dumps({"case": case.id, "arm": "cot-0.7", "gold": case.answer,
                                "samples": [{"text": "The answer is 5.", "finish": "stop"}]})
                    + "\n")
    out = tmp_path / "mined.jsonl"
    cli = CliRunner()
    res = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-results", str(pool),
                            "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rows = read_mined(out)
    assert {r.case for r in rows if r.correct} == {rest[0].id, rest[1].id}
    assert reported.id not in {r.case for r in rows}  # refused though the pool holds it
    assert json.loads(res.output)["sources"][str(pool)]["excluded"] == 2
    # mining again adds nothing: rows are distinct
    again = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-results",
                              str(pool), "--out", str(out), "--json"])
    assert json.loads(again.output)["new_rows"] == 0
    sft = tmp_path / "sft.jsonl"
    res = cli.invoke(main, ["star", "export", str(out), "--format", "sft", "--out", str(sft)])
    assert res.exit_code == 0, res.output
    made = read_rows(sft, SFTRow)
    assert len(made) == 2
    assert made[0].messages[-1].content.startswith("```python\ndef solution()")


def test_malformed_training_row_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, '
                   '{"role": "assistant", "content": "yo"}]}\n'
                   '{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(MinskyError, match=r"sft.jsonl:2: messages: expected"):
        read_rows(bad, SFTRow)
    bad.write_text('{"messages": [{"role": "robot", "content": "hi"}]}\n')
    with pytest.raises(MinskyError, match=r"sft.jsonl:1: messages.0.role"):
        read_rows(bad, SFTRow)


def test_arena_verdicts_become_preference_pairs() -> None:
    rows = [{"kind": "answer", "prompt": "1", "contestant": "a", "text": "good"},
            {"kind": "answer", "prompt": "1", "contestant": "b", "text": "bad"},
            {"kind": "judgment", "prompt": "1", "a": "a", "b": "b", "verdict": "A"},
            {"kind": "judgment", "prompt": "1", "a": "b", "b": "a", "verdict": "B"},
            {"kind": "answer", "prompt": "2", "contestant": "a", "text": "x"},
            {"kind": "answer", "prompt": "2", "contestant": "b", "text": "y"},
            # flips with the order: no pair
            {"kind": "judgment", "prompt": "2", "a": "a", "b": "b", "verdict": "A"},
            {"kind": "judgment", "prompt": "2", "a": "b", "b": "a", "verdict": "A"}]
    pairs = preference_pairs(rows, {"1": "Say something", "2": "Other"})
    assert len(pairs) == 1
    assert pairs[0]["chosen"][0]["content"] == "good"
    assert pairs[0]["rejected"][0]["content"] == "bad"
    assert pairs[0]["prompt"] == [{"role": "user", "content": "Say something"}]


def test_program_society_is_the_greedy_coder_alone() -> None:
    society = load("program", "fake:m")
    assert [(a.name, a.group, a.options.temperature) for a in society.agents] == [
        ("coder", "programmer", 0.0)]
    backend = FunctionBackend(lambda r: "def solution():\n    return 2 + 5")
    runner = Runner(Backends(overrides={"fake:m": backend}))

    async def go() -> object:
        async with runner:
            return await runner.run(society, "Tom has 2 cats and 5 dogs. How many pets?")

    result = asyncio.run(go())
    assert result.answer == "7" and result.status == "ok"  # type: ignore[attr-defined]
    assert backend.requests[0].prefix == "```python\n"
