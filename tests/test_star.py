"""STaR mining, export and rounds plumbing, on scripted fakes (no model)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.evals.arena import preference_pairs
from minsky.evals.benchmarks import load_benchmark
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load
from minsky.star.export import dpo_rows, sft_rows
from minsky.star.fresh import mine_fresh
from minsky.star.mine import (
    Exclusion,
    Reply,
    append_mined,
    cases_by_question,
    hinted_question,
    judge,
    program_key,
    read_mined,
    reporting_exclusion,
    results_replies,
)
from minsky.star.rounds import RoundPlan, run_rounds
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
    from minsky.plugin_api import Case
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
    # the 500 of the seed-0 sample of 500, and 3 that smaller seed-0 samples draw
    assert len(excluded.ids) == 503
    reported = load_benchmark(bench, limit=200, seed=0)
    assert all((c.id, c.question) in excluded for c in reported)
    assert ("other-id", reported[0].question.upper()) in excluded
    assert sum((c.id, c.question) not in excluded for c in cases) == 17


def test_cli_mine_from_a_pool_then_export(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 520)
    excluded = reporting_exclusion(bench)
    rest = [c for c in load_benchmark(bench) if (c.id, c.question) not in excluded]
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
    with pytest.raises(MinskyError, match=r"sft.jsonl:2: field 'messages': expected"):
        read_rows(bad, SFTRow)
    bad.write_text('{"messages": [{"role": "robot", "content": "hi"}]}\n')
    with pytest.raises(MinskyError,
                       match=r"sft.jsonl:1: field 'messages.0.role': .* \(got 'robot'\)"):
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


# --- review: judging ---------------------------------------------------------------


def test_program_key_drops_docstrings_but_not_other_strings() -> None:
    plain = "def solution():\n    return 4 + 3"
    assert program_key('"""Pets."""\n' + plain) == program_key(plain)  # a module docstring
    assert program_key('def solution():\n    """Pets."""\n    return 4 + 3') == \
        program_key(plain)
    # a string after a colon is a dict value, not a docstring: two programs, two keys
    cat = 'def solution():\n    names = {"a": "cat"}\n    return len(names["a"])'
    assert program_key(cat) != program_key(cat.replace("cat", "horse"))


def test_judge_strips_the_hint_whatever_the_question_layout() -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    # a logged run matches its case by normalised question: its text may differ in layout
    r = _reply(q, "```python\ndef solution():\n    return 4 + 3\n```", True)
    asked = "Tom has 4 cats and  3 dogs.\nHow many pets?"
    r.messages[-1] = ChatTurn(role="user", content=hinted_question(asked, "7") + "\n\nWrite")
    row = judge(r)
    assert row is not None and row.hinted
    assert row.messages[-1].content == asked + "\n\nWrite"
    # a hint that cannot be stripped is never trained on
    r.messages[-1] = ChatTurn(role="user", content=asked + "\n\n(Hint: the answer is 7.)")
    assert judge(r) is None


def test_judge_refuses_a_copied_negative_hint() -> None:
    q = "It was 3 degrees and fell by 8 degrees. What is the temperature now?"
    r = _reply(q, "```python\ndef solution():\n    return -5\n```", True)
    r.case = replace(r.case, answer="-5")
    r.messages[-1] = ChatTurn(role="user", content=hinted_question(q, "-5"))
    assert judge(r) is None
    r.text = "```python\ndef solution():\n    return 3 - 8\n```"
    assert judge(r) is not None


def test_judge_refuses_truncated_replies() -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    cot = _reply(q, "4 + 3 = 7. The answer is 7.", program=False)
    cot.finish = "length"
    assert judge(cot) is None
    program = _reply(q, "```python\ndef solution():\n    return 4 + 3\n```")
    program.finish = "length"
    assert judge(program) is None


def test_pool_programs_already_carry_their_fence(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 3)
    case = load_benchmark(bench)[1]
    k, pears = numbers(case.question)
    # benchmarks/pool.py stores a program as asked: the opening fence, the reply, a fence
    text = f"```python\nPEARS = {pears}\n\ndef solution():\n    return {k} + PEARS\n```"
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"case": case.id, "arm": "pot-greedy",
                                "samples": [{"text": text, "finish": "stop"}]}) + "\n")
    replies = list(results_replies(pool, cases_by_question([case]), None))
    row = judge(replies[0])
    assert row is not None and row.correct
    assert row.reply == text


def test_mined_prompt_keeps_the_worked_examples(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 2)
    cases = load_benchmark(bench)
    society_file = tmp_path / "shown.toml"
    society_file.write_text(SOCIETY.read_text().replace("window = 0", "window = 0\nexamples = 1"))
    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:m": FunctionBackend(reply_for)}), log)

    async def go() -> object:
        async with runner:
            return await mine_fresh(runner, log, load(str(society_file), "fake:m"), cases,
                                    tmp_path / "mined.jsonl", Exclusion(), rationalize=False)

    mined = asyncio.run(go())
    row = next(r for r in mined.rows if r.correct)  # type: ignore[attr-defined]
    # the prompt as sent: the worked example's question and its program, then the problem
    assert [m.role for m in row.messages] == ["system", "user", "assistant", "user"]
    assert row.messages[2].content.startswith("```python\n")
    log.close()


# --- review: files and the command line -----------------------------------------------


def test_read_rows_names_the_file_line(tmp_path: Path) -> None:
    bad = tmp_path / "sft.jsonl"
    good = ('{"messages": [{"role": "user", "content": "hi"}, '
            '{"role": "assistant", "content": "yo"}]}\n')
    bad.write_text(good + "\n\n" + '{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(MinskyError, match=r"sft.jsonl:4: field 'messages': expected"):
        read_rows(bad, SFTRow)


def _one_line_error(res: Result, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for word in words:
        assert word in lines[0], lines[0]


def test_cli_bad_inputs_are_one_line(tmp_path: Path) -> None:
    bench = bench_file(tmp_path / "train.jsonl", 6)
    cli = CliRunner()
    out = str(tmp_path / "mined.jsonl")
    missing = str(tmp_path / "nope.jsonl")
    res = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-results", missing,
                            "--out", out])
    _one_line_error(res, "nope.jsonl", "does not exist")
    odd = tmp_path / "odd.jsonl"
    odd.write_text('["not", "an", "object"]\n')
    res = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-results", str(odd),
                            "--out", out])
    _one_line_error(res, "odd.jsonl")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"train:1\n\xff\xfe\n")
    res = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-log", "--exclude",
                            str(bad), "--out", out])
    _one_line_error(res, "bad.txt", "UTF-8")
    res = cli.invoke(main, ["star", "export", missing, "--out", str(tmp_path / "sft.jsonl")])
    _one_line_error(res, "nope.jsonl")
    mined = tmp_path / "broken.jsonl"
    mined.write_text('{"case": "train:1"}\n')
    res = cli.invoke(main, ["star", "export", str(mined), "--out", str(tmp_path / "s.jsonl")])
    _one_line_error(res, "broken.jsonl:1", "question")
    res = cli.invoke(main, ["star", "mine", "--bench", str(bench), "--from-log", "--out",
                            str(mined)])
    _one_line_error(res, "broken.jsonl:1", "question")
    res = cli.invoke(main, ["star", "run", "--bench", str(bench), "--limit", "5",
                            "--held-back", "5", "--out", str(tmp_path / "rounds")])
    _one_line_error(res, "--limit 5", "--held-back 5", "train.jsonl")


def test_cli_dpo_export_per_case_zero_is_all(tmp_path: Path) -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    texts = ["return 4 + 3", "return 3 + 4", "return 7 * 1", "return 4 * 3"]
    rows = [judge(_reply(q, f"```python\ndef solution():\n    {t}\n```")) for t in texts]
    mined = tmp_path / "mined.jsonl"
    append_mined(mined, [r for r in rows if r is not None])
    out = tmp_path / "dpo.jsonl"
    res = CliRunner().invoke(main, ["star", "export", str(mined), "--format", "dpo",
                                    "--per-case", "0", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rows"] == 3  # three right programs, each against the wrong


def test_summary_table_escapes_control_characters() -> None:
    from io import StringIO

    from rich.console import Console

    from minsky.cli import render

    sink = StringIO()
    Console(file=sink, force_terminal=True, width=200).print(render.mapping_table(
        {"out": "x\x1b]0;owned\x07.jsonl", "sources": {"a\x1b[2Jb": {"kept": 1}}}))
    shown = sink.getvalue()
    assert "]0;owned" in shown and "\x1b]0;" not in shown and "\x07" not in shown
    assert "\x1b[2J" not in shown


def test_reporting_exclusion_covers_every_smaller_seed0_sample(tmp_path: Path) -> None:
    # subtle: random.sample draws a small sample another way than a large one, so on a
    # file of a few hundred or thousand cases a seed-0 sample of 80 is no prefix of 500
    bench = bench_file(tmp_path / "train.jsonl", 520)
    excluded = reporting_exclusion(bench)
    for k in (20, 50, 80, 85, 100, 200, 500):
        assert all((c.id, c.question) in excluded for c in load_benchmark(bench, k, 0)), k


# --- review: organisations ----------------------------------------------------------


def test_consensus_of_experts_alone_answers() -> None:
    from minsky.society import from_dict

    society = from_dict({"name": "experts", "organisation": "consensus", "agents": [
        {"name": "e", "group": "expert", "role": "r", "model": "fake:m"}]}, "test")
    runner = Runner(Backends(overrides={"fake:m": FunctionBackend(
        lambda r: "1 + 2 = 3. The answer is 3.")}))

    async def go() -> object:
        async with runner:
            return await runner.run(society, "What is 1 + 2?")

    result = asyncio.run(go())
    assert result.answer == "3" and result.status == "ok"  # type: ignore[attr-defined]


# --- review: rounds -------------------------------------------------------------------


def _round_plan(tmp_path: Path, rounds: int = 1) -> RoundPlan:
    bench = bench_file(tmp_path / "train.jsonl", 6)
    cases = load_benchmark(bench)
    return RoundPlan(str(bench), str(SOCIETY), "fake:m", rounds, cases[:4], cases[4:],
                     Exclusion(), rationalize=False, per_case=4, train={})


def _fake_training(monkeypatch: pytest.MonkeyPatch, stops: list[str]) -> list[str]:
    """train_adapter replaced: each call pops how it stopped; returns the threads it ran on."""
    import threading

    from minsky.star import train

    ran: list[str] = []

    def fake(data: Path, out: Path, **kwargs: object) -> object:
        ran.append(threading.current_thread().name)
        assert read_rows(data, SFTRow)
        out.write_bytes(b"GGUF")
        return train.TrainReport(
            rows=1, dropped=0, steps=1, total_steps=1, tokens=1, tokens_all=1,
            tokens_per_s=1.0, minutes=0.1, load_s=0.0, final_loss=1.0, mean_loss=1.0,
            resumed=False, stopped=stops.pop(0), adapter=out)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "train_adapter", fake)
    return ran


def _make(folder: Path) -> Callable[[], tuple[Runner, int]]:
    adapter = folder / "round-1" / "adapter.gguf"
    backend = FunctionBackend(reply_for)

    def make() -> tuple[Runner, int]:
        overrides = {"fake:m": backend, f"fake:m+{adapter}": backend}
        return Runner(Backends(overrides=overrides), RunLog()), 2  # type: ignore[dict-item]

    return make


def test_rounds_resume_a_round_whose_training_was_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    plan, folder = _round_plan(tmp_path), tmp_path / "star"
    ran = _fake_training(monkeypatch, ["interrupted", "done"])
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_rounds(plan, folder, _make(folder)))
    # mined, but not trained: the rerun trains again (from its checkpoint)
    assert (folder / "round-1" / "mined.jsonl").exists()
    assert not (folder / "round-1" / "adapter.json").exists()
    reports = asyncio.run(run_rounds(plan, folder, _make(folder)))
    # training runs in the main thread, where Ctrl-C and SIGTERM stop it on a checkpoint
    assert ran == [threading.main_thread().name] * 2
    assert [r.round for r in reports] == [0, 1] and reports[1].heldout is not None
    assert reports[1].union == 2  # k = 0 and 2 of the mined four, programs right


def test_rounds_with_nothing_to_train_on_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, folder = _round_plan(tmp_path), tmp_path / "star"
    plan.mine_cases = [c for c in plan.mine_cases if numbers(c.question)[0] % 2]  # all wrong
    _fake_training(monkeypatch, ["done"])
    with pytest.raises(MinskyError, match="round 1: no right rationale"):
        asyncio.run(run_rounds(plan, folder, _make(folder)))


def test_zero_shot_export_keeps_only_replies_asked_without_worked_examples() -> None:
    q = "Tom has 4 cats and 3 dogs. How many pets?"
    plain = judge(_reply(q, "```python\ndef solution():\n    return 4 + 3\n```"))
    shown = judge(_reply(q, "```python\ndef solution():\n    cats = 4\n    return cats + 3\n```"))
    assert plain is not None and shown is not None
    # asked after a worked program: the example's turns precede the question
    shown.messages = [shown.messages[0], ChatTurn(role="user", content="an example"),
                      ChatTurn(role="assistant", content="its program"), shown.messages[1]]
    assert len(sft_rows([plain, shown], Exclusion())) == 2
    kept = sft_rows([plain, shown], Exclusion(), zero_shot=True)
    assert [r["messages"][-1]["content"] for r in kept] == [plain.reply]
