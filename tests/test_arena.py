"""The arena: both-order judging, flips as ties, ratings, length bias."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.evals.arena import judge_template, leaderboard, run_arena
from minsky.inputs.records import jsonl_rows
from minsky.messages import ChatRequest
from minsky.organisations.judging import combine, judge_question
from minsky.runner import Runner
from minsky.society import from_dict

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize("ab, ba, score, flipped", [
    ("A", "B", 1.0, False),   # first contestant wins in both orders
    ("B", "A", 0.0, False),   # second wins in both orders
    ("A", "A", 0.5, True),    # "A" both times: the judge followed the position, not the answer
    ("B", "B", 0.5, True),
    ("C", "C", 0.5, False),
    ("A", "C", 0.5, False),   # a win and a tie: not consistent, but not a flip either
    (None, "B", 0.5, False),
])
def test_combine_both_orders(ab, ba, score, flipped) -> None:
    assert combine(ab, ba) == (score, flipped)


def rows_for(results: dict[tuple[str, str, str], tuple[str, str]]) -> list[dict]:
    rows = []
    for (pid, a, b), (ab, ba) in results.items():
        rows += [{"kind": "judgment", "prompt": pid, "a": a, "b": b, "verdict": ab},
                 {"kind": "judgment", "prompt": pid, "a": b, "b": a, "verdict": ba}]
    for pid in {k[0] for k in results}:
        for name, text in (("x", "short"), ("y", "a much longer answer")):
            rows.append({"kind": "answer", "prompt": pid, "contestant": name, "text": text})
    return rows


def test_leaderboard_by_hand() -> None:
    # x beats y on 3 prompts, y beats x on 1: Bradley–Terry strength ratio 3
    results = {(f"p{i}", "x", "y"): ("A", "B") for i in range(3)}
    results[("p3", "x", "y")] = ("B", "A")
    board = leaderboard(rows_for(results), n_boot=50)
    ratings = {r["contestant"]: r["rating"] for r in board["leaderboard"]}
    assert ratings["x"] - ratings["y"] == pytest.approx(400 * math.log10(3), abs=0.2)
    top = board["leaderboard"][0]
    assert (top["contestant"], top["wins"], top["losses"], top["games"]) == ("x", 3, 1, 4)
    assert top["ci_low"] <= top["rating"] <= top["ci_high"]
    assert board["pairs"] == 4 and board["flip_rate"] == 0
    # the shorter answer (x) won 3 of 4 decisive games: the longer won 1
    assert board["length_bias"]["share"] == pytest.approx(0.25)


def test_position_bias_becomes_ties_and_is_counted() -> None:
    results = {(f"p{i}", "x", "y"): ("A", "A") for i in range(4)}
    board = leaderboard(rows_for(results), n_boot=20)
    assert board["flip_rate"] == 1.0
    assert all(r["ties"] == 4 for r in board["leaderboard"])
    # all 8 verdicts went to the answer shown first: sign test p = 2 / 2**8
    pb = board["position_bias"]
    assert (pb["decisive"], pb["first_won"], pb["share"]) == (8, 8, 1.0)
    assert pb["p_value"] == pytest.approx(2 / 256)
    assert pb["low"] == pytest.approx(0.6756, abs=1e-4) and pb["high"] == pytest.approx(1.0)
    # a judge without position bias: the same answer wins in both orders
    fair = leaderboard(rows_for({("p0", "x", "y"): ("A", "B")}), n_boot=5)["position_bias"]
    assert (fair["first_won"], fair["share"], fair["p_value"]) == (1, 0.5, 1.0)


def test_leaderboard_needs_games() -> None:
    with pytest.raises(MinskyError, match="no pair has been judged"):
        leaderboard([])


def test_judge_question_uses_the_template_and_constitution() -> None:
    template = judge_template(DATA / "mt_bench" / "judge_prompts.jsonl")
    q = judge_question(template, "Say hi.", "hello", "hey there", "1. Be kind.")
    assert "[The Start of Assistant A's Answer]\nhello" in q
    assert "Judge by these principles:\n1. Be kind." in q
    assert "[[A]]" not in q  # MT-Bench's output format gives way to the choice format
    with pytest.raises(MinskyError, match="not a pairwise one"):
        judge_template(DATA / "mt_bench" / "judge_prompts.jsonl", "single-v1")


def society(name: str, model: str) -> object:
    return from_dict({"name": name, "organisation": "single", "model": model,
                      "agents": [{"name": "a"}]}, f"{name}.toml")


async def test_run_arena_judges_every_pair_in_both_orders(tmp_path: Path) -> None:
    def judge(req: ChatRequest) -> str:
        text = req.messages[-1].content
        a = text.split("[The Start of Assistant A's Answer]\n")[1].split("\n[The End")[0]
        # this judge prefers the answer that mentions "best"
        return "The answer is A." if "best" in a else "The answer is B."

    backends = {
        "fake:good": FunctionBackend(lambda r: "This is the best answer."),
        "fake:poor": FunctionBackend(lambda r: "Meh."),
        "fake:mid": FunctionBackend(lambda r: "An answer."),
        "fake:judge": FunctionBackend(judge),
    }
    runner = Runner(Backends(overrides=backends))
    out = tmp_path / "arena.jsonl"
    contestants = [society("good", "fake:good"), society("poor", "fake:poor"),
                   society("mid", "fake:mid")]
    prompts = [("1", "Say something."), ("2", "Say more.")]
    await run_arena(runner, prompts, contestants, society("judge", "fake:judge"),
                    judge_template(None), out)
    rows = jsonl_rows(out)
    assert sum(r["kind"] == "answer" for r in rows) == 6
    assert sum(r["kind"] == "judgment" for r in rows) == 2 * 3 * 2  # prompts × pairs × orders
    board = leaderboard(rows, n_boot=20)
    assert board["leaderboard"][0]["contestant"] == "good"
    assert board["flip_rate"] == pytest.approx(2 / 6)  # poor vs mid: "B" in both orders
    # rerun: nothing left to do
    await run_arena(runner, prompts, contestants, society("judge", "fake:judge"),
                    judge_template(None), out)
    assert len(jsonl_rows(out)) == len(rows)


def test_cli_arena_on_mt_bench_prompts(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    result = CliRunner().invoke(main, [
        "arena", "--prompts", str(DATA / "mt_bench" / "question.jsonl"), "--limit", "2",
        "--contestant", "single", "--contestant", "vote3", "--judge", "single",
        "--model", "echo:", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    board = json.loads(result.stdout)
    assert {r["contestant"] for r in board["leaderboard"]} == {"single", "vote3"}
    assert board["pairs"] == 2 and 0 <= board["flip_rate"] <= 1
    assert board["prompts"] == 2


async def test_a_judge_template_with_an_unknown_placeholder_stops_before_any_answer(
        tmp_path: Path) -> None:
    backend = FunctionBackend(lambda r: "An answer.")
    runner = Runner(Backends(overrides={"fake:a": backend}))
    template = {"system_prompt": "Judge.", "prompt_template": "{question} {answer_a} {nope}"}
    with pytest.raises(MinskyError, match="judge prompt: bad placeholder 'nope'"):
        await run_arena(runner, [("1", "Say hi.")], [society("a", "fake:a"),
                                                     society("b", "fake:a")],
                        society("judge", "fake:a"), template, tmp_path / "a.jsonl")
    assert backend.requests == []


async def test_a_contestant_that_fails_leaves_its_error_beside_its_empty_answer(
        tmp_path: Path) -> None:
    def broken(req: ChatRequest) -> str:
        raise ValueError("the model server said no")

    backends = {"fake:good": FunctionBackend(lambda r: "This is the best answer."),
                "fake:broken": FunctionBackend(broken),
                "fake:judge": FunctionBackend(lambda r: "The answer is A.")}
    runner = Runner(Backends(overrides=backends))
    out = tmp_path / "arena.jsonl"
    await run_arena(runner, [("1", "Say something.")],
                    [society("good", "fake:good"), society("broken", "fake:broken")],
                    society("judge", "fake:judge"), judge_template(None), out)
    answers = {r["contestant"]: r for r in jsonl_rows(out) if r["kind"] == "answer"}
    assert answers["good"]["status"] == "ok" and "error" not in answers["good"]
    assert answers["broken"]["status"] == "error" and answers["broken"]["text"] == ""
    assert "the model server said no" in answers["broken"]["error"]


def test_failed_answers_and_verdicts_are_no_games_exit_1_and_a_rerun_retries_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = {"flaky", "judge"}

    def flaky(r: ChatRequest) -> str:
        if "flaky" in dead:
            raise ConnectionError("connection refused")
        return "This is the best answer too."

    def judge(r: ChatRequest) -> str:
        a = r.messages[-1].content.split("[The Start of Assistant A's Answer]\n")[1]
        if "judge" in dead and a.startswith("An answer."):
            raise ConnectionError("connection refused")
        return "The answer is A." if "best" in a.split("\n[The End")[0] else "The answer is B."

    backends = {"fake:good": FunctionBackend(lambda r: "This is the best answer."),
                "fake:mid": FunctionBackend(lambda r: "An answer."),
                "fake:flaky": FunctionBackend(flaky), "fake:judge": FunctionBackend(judge)}
    monkeypatch.setattr(Backends, "get", lambda self, spec: backends[spec])
    files = []
    for name in ("good", "mid", "flaky", "judge"):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "{name}"\norganisation = "single"\nmodel = "fake:{name}"\n'
                        '[[agents]]\nname = "a"\n')
        files.append(str(path))
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"question_id": 1, "turns": ["Say something."]}\n')
    out = tmp_path / "a.jsonl"
    args = ["arena", "--prompts", str(prompts), "--contestant", files[0], "--contestant",
            files[1], "--contestant", files[2], "--judge", files[3], "--out", str(out)]
    # flaky failed: no game of its; good vs mid judged in one order only: no game either
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 2, first.output
    assert "answer 1 by flaky: failed (error)" in first.stderr
    assert first.stderr.strip().splitlines()[-1] == (
        "error: no pair has been judged in both orders yet; 2 run(s) failed, and rerunning "
        "the same command retries them")
    dead.discard("judge")  # the judge is back: good vs mid is a game, flaky still has none
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 1, second.output
    assert "errors, left out of the games (a rerun retries them): flaky 1" in second.stdout
    assert second.stderr.strip().splitlines()[-1] == (
        "error: 1 run(s) failed (flaky's answers 1) and are left out of the games; "
        "rerunning the same command retries them")
    dead.clear()
    third = CliRunner().invoke(main, [*args, "--json"])
    assert third.exit_code == 0, third.output
    board = json.loads(third.stdout)
    assert {r["contestant"] for r in board["leaderboard"]} == {"good", "mid", "flaky"}
    assert board["pairs"] == 3 and board["failed"]["total"] == 0
    # each answer and each ordered pair judged once it could be, nothing judged twice
    rows = jsonl_rows(out)
    assert sum(r["kind"] == "judgment" and r["status"] == "ok" for r in rows) == 6
