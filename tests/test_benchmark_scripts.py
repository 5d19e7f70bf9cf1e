"""The benchmark scripts behind the docs' tuning and paired figures: benchmarks/pool.py,
pool_rules.py, reads.py and frontier.py, plus the timing scripts' results files, on
small synthetic files in tmp_path (no model is loaded)."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from minsky.evals.benchmarks import load_benchmark
from minsky.evals.stats import mcnemar, wilson_interval
from minsky.paths import home_dir
from minsky.society import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pool: Any = importlib.import_module("pool")
pool_rules: Any = importlib.import_module("pool_rules")
reads: Any = importlib.import_module("reads")
frontier: Any = importlib.import_module("frontier")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- pool.py: the tuning sample -------------------------------------------------------


def test_tuning_cases_leave_out_every_reporting_sample(tmp_path: Path) -> None:
    # 1,200 cases: like MAWPS (2,065), small enough that random.sample draws a 100-case
    # sample by another method than a 500-case one
    bench = write_jsonl(tmp_path / "train.jsonl", [
        {"question": f"Problem {i}: what is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"}
        for i in range(1200)])
    reporting = {n: {c.id for c in load_benchmark(bench, n, 0)} for n in (50, 100, 200, 500)}
    assert not reporting[100] <= reporting[500]  # what excluding the 500 alone missed
    tuned = pool.tuning_cases(bench, 150)
    ids = [c.id for c in tuned]
    assert len(set(ids)) == 150
    for n, report in reporting.items():
        assert not set(ids) & report, n
    order = [c.id for c in load_benchmark(bench)]
    assert ids == sorted(ids, key=order.index)  # file order
    assert [c.id for c in pool.tuning_cases(bench, 150)] == ids  # the same every time


# --- pool_rules.py: the consensus organisation driven over a pool ---------------------


def test_default_params_and_plan_are_the_society_files() -> None:
    params = pool_rules.default_params()
    assert (params["window"], params["stop"], params["confidence"]) == (4, "unanimous", "mean")
    assert (params["unused_quantity"], params["not_whole"]) == (0.25, 0.25)
    assert params["examples"] == {"shown": 1}
    groups = [g for g, _, _ in pool_rules.DEFAULT_PLAN]
    # ten programmers and one reasoner, as consensus.toml has them (copies expanded)
    assert groups == [a.group for a in load("consensus").agents]
    assert groups.count("programmer") == 10 and groups.count("reasoner") == 1


def program(n: int) -> str:
    return f"```python\ndef solution():\n    return {n}\n```"


def samples(answers: Sequence[int | str]) -> list[dict[str, Any]]:
    """Pool samples of 10 prompt + 5 completion tokens: a number is a program returning
    it, a string a chain of thought."""
    return [{"text": a if isinstance(a, str) else program(a), "finish": "stop",
             "prompt_tokens": 10, "tokens": 5, "logprobs": [-0.1, -0.1]} for a in answers]


def tiny_pool(path: Path) -> Path:
    def arms(gold: str, greedy: int, pot: list[int], cot: str, pot1: list[int] | None
             ) -> list[dict[str, Any]]:
        case = f"q{gold}"
        out = [{"case": case, "arm": "pot-greedy", "gold": gold, "samples": samples([greedy])},
               {"case": case, "arm": "pot-0.8", "gold": gold, "samples": samples(pot)},
               {"case": case, "arm": "cot-greedy", "gold": gold, "samples": samples([cot])}]
        if pot1 is not None:
            out.append({"case": case, "arm": "pot1-0.8", "gold": gold, "samples": samples(pot1)})
        return out

    return write_jsonl(path, [
        # every member right: the first window of four is unanimous and asking stops
        *arms("4", 4, [4] * 6, "So the answer is 4.", [4] * 3),
        # the greedy program is wrong; the second window (the reasoner and the three
        # shown programmers) is unanimous for the gold
        *arms("9", 2, [2, 2, 9, 9, 9, 9], "So the answer is 9.", [9] * 3),
        # drawn without the shown programmers' arm: a plan that needs it leaves it out
        *arms("7", 7, [7] * 6, "So the answer is 7.", None),
    ])


# digit-free questions: no program leaves out a quantity the question gives
ASKED = {"q4": "What is two and two?", "q9": "What is four and five?",
         "q7": "What is three and four?"}


def test_simulate_the_default_on_a_tiny_pool(tmp_path: Path) -> None:
    path = tiny_pool(tmp_path / "pool.jsonl")
    acc, tokens, asks, n = pool_rules.simulate(path, pool_rules.DEFAULT_PLAN,
                                               pool_rules.default_params(), asked=ASKED)
    assert n == 2  # q7 lacks the pot1-0.8 arm the default's shown programmers need
    assert acc == 1.0
    assert asks == (4 + 8) / 2  # one window, then two
    assert tokens == asks * 15


def test_simulate_scores_what_the_plan_reads(tmp_path: Path) -> None:
    path = tiny_pool(tmp_path / "pool.jsonl")
    greedy = [("programmer", "pot-greedy", 0)]
    assert pool_rules.simulate(path, greedy, {}, asked=ASKED) == (2 / 3, 15.0, 1.0, 3)
    # the greedy program and the first three samples, one window: 2, 2, 2, 9 on q9
    four = [*greedy, *[("programmer", "pot-0.8", i) for i in range(3)]]
    acc, _, asks, n = pool_rules.simulate(path, four, {"window": 4}, asked=ASKED)
    assert (acc, asks, n) == (2 / 3, 4.0, 3)
    # a plan reading past the samples drawn finds no problem
    assert pool_rules.simulate(path, [("programmer", "pot-0.8", 6)], {})[3] == 0


def test_the_pool_is_drawn_through_the_runner_and_scored_through_the_shared_pump() -> None:
    """No script has a gate or a pump of its own: pool.py draws through a direct run
    (logged, budgeted), pool_rules.py drives the organisation with `drive`."""
    drawn = Path(pool.__file__).read_text(encoding="utf-8")
    assert ".complete(" not in drawn and "run.chat(" in drawn
    rules = Path(pool_rules.__file__).read_text(encoding="utf-8")
    assert ".send(" not in rules and "next(gen" not in rules and "drive(" in rules


def test_read_pool_runs_programs_and_reads_chains_of_thought(tmp_path: Path) -> None:
    rows = [{"case": "a", "arm": "pot-0.8", "gold": "3",
             "samples": [*samples([3]), {**samples(["```python\ndef solution():\n"
                                                     "    return undefined\n```"])[0]},
                         {**samples([5])[0], "finish": "length"}]},
            {"case": "a", "arm": "cot-greedy", "gold": "3", "samples": samples(["It is 3."])}]
    got, gold = pool_rules.read_pool(write_jsonl(tmp_path / "pool.jsonl", rows))
    assert gold == {"a": "3"}
    right, broken, cut = got["a"]["pot-0.8"]
    assert (right.answer, right.truncated, right.tokens) == ("3", False, 15)
    assert broken.answer is None and broken.program_error
    assert cut.truncated
    assert got["a"]["cot-greedy"][0].answer == "3"


# --- reads.py: paired reads of results files ------------------------------------------


def result_row(case: str, society: str, correct: bool, status: str = "ok", **more: Any
               ) -> dict[str, Any]:
    return {"case": case, "society": society, "answer": "x", "gold": "y", "correct": correct,
            "prompt_tokens": 100, "completion_tokens": 20, "wall_s": 2.0, "status": status,
            **more}


def test_star_pairs_the_cases_both_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(reads, "RESULTS", tmp_path)
    base = [True, True, False, False, False, True]
    trained = [True, False, True, True, False, False]
    write_jsonl(tmp_path / "base.jsonl",
                [result_row(f"c{i}", "program", ok) for i, ok in enumerate(base)])
    write_jsonl(tmp_path / "trained.jsonl", [
        *[result_row(f"c{i}", "program", ok) for i, ok in enumerate(trained)],
        # a failed run is no answer: c5 is left out of the pairing
        result_row("c5", "program", False, status="error"),
        result_row("c9", "program", True),  # not in the base file
    ])
    reads.star("trained.jsonl", "base.jsonl")
    out = capsys.readouterr().out
    test = mcnemar(base[:5], trained[:5])
    assert (test.b01, test.b10) == (2, 1)
    assert out.startswith("program: on 5 problems base 2 (40.0%), trained 3 (60.0%); "
                          f"2 only trained, 1 only base right (McNemar p = {test.p_value:.3g})")


def test_choices_reads_the_unshifted_ask_and_pairs_single_on_the_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(reads, "RESULTS", tmp_path)
    home_dir().mkdir(parents=True, exist_ok=True)
    log = sqlite3.connect(home_dir() / "logs.db")
    log.execute("create table runs (id text primary key, outcome_json text)")
    golds, unshifted, society = "ABCD", "BBBB", "ABCA"
    rows = []
    for i, (gold, first, pick) in enumerate(zip(golds, unshifted, society, strict=True)):
        log.execute("insert into runs values (?, ?)", (f"r{i}", json.dumps(
            {"members": [{"name": "reasoner", "answer": first}]})))
        rows.append({**result_row(f"c{i}", "consensus", pick == gold, run_id=f"r{i}"),
                     "answer": pick, "gold": gold})
        rows.append({**result_row(f"c{i}", "single", i == 3), "answer": "D", "gold": gold})
    rows.append({**result_row("outside", "single", True), "answer": "D", "gold": "D"})
    log.commit()
    log.close()
    write_jsonl(tmp_path / "arc.jsonl", rows)
    reads.choices("arc.jsonl")
    out = capsys.readouterr().out
    assert ("arc.jsonl: 4 questions; all shifts 3 right; the unshifted ask alone 1 right "
            "(2 only all shifts, 0 only the unshifted ask, McNemar p = 0.5)") in out
    assert "letters the unshifted ask picked: {'B': 4}" in out
    # the row outside the consensus questions is not counted
    assert ("single on the same 4: 1 right (3 only consensus, 1 only single, McNemar p = "
            "0.625); letters it answered: {'D': 4}") in out


# --- frontier.py: the reporting sample's points ---------------------------------------


def test_eval_points_leave_failed_runs_out(tmp_path: Path) -> None:
    rows = [
        {"summary": True},  # a row without a case is not a case
        result_row("c0", "a", True),
        result_row("c1", "a", False),
        result_row("c2", "a", False, status="timeout"),  # failed, never rerun: left out
        result_row("c3", "a", False, status="error"),
        {**result_row("c3", "a", True), "prompt_tokens": 200},  # the rerun's row counts
        result_row("c0", "b", True, status="interrupted"),
        result_row("c1", "b", True),
    ]
    points = frontier.eval_points(write_jsonl(tmp_path / "eval.jsonl", rows))
    low, high = wilson_interval(2, 3)
    assert points["a"] == pytest.approx(((120 + 120 + 220) / 3, 2 / 3, low, high, 3))
    assert points["b"] == pytest.approx((120.0, 1.0, *wilson_interval(1, 1), 1))


# --- the timing scripts append their report to a results file -------------------------


def test_serve_load_appends_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    serve_load: Any = importlib.import_module("serve_load")
    out = tmp_path / "results" / "serve-load.jsonl"
    for _ in range(2):  # a rerun adds a row beside the first
        monkeypatch.setattr(sys, "argv", ["serve_load.py", "--fake", "--fake-delay", "0.01",
                                          "--requests", "3", "--out", str(out)])
        assert serve_load.main() == 0
    capsys.readouterr()
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["requests"] == 3 and first["fake"] is True and first["problems"] == []
    assert first["concurrent"]["ok"] == first["sequential"]["ok"] == 3
    assert "measured_at" in first and second.keys() == first.keys()


def test_batching_appends_both_modes_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    batching: Any = importlib.import_module("batching")
    out = tmp_path / "batching.jsonl"
    monkeypatch.setattr(sys, "argv", ["batching.py", "--model", "echo:", "--repeats", "1",
                                      "--out", str(out)])
    asyncio.run(batching.main())
    capsys.readouterr()
    (row,) = (json.loads(line) for line in out.read_text().splitlines())
    assert row["model"] == "echo:" and row["repeats"] == 1
    assert row["completion_tokens_batched"] == row["completion_tokens_serial"] > 0


# --- text_report.py: issue 31's figures -------------------------------------------------

def _arena_rows(verdicts: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Answers of single and x to each prompt, and the judgments in both orders: verdict
    with single shown first, then with x shown first."""
    rows: list[dict[str, Any]] = []
    for pid, (first, second) in verdicts.items():
        rows += [{"kind": "answer", "prompt": pid, "contestant": "single", "text": "s" * 10,
                  "tokens": 100, "wall_s": 1.0, "status": "ok"},
                 {"kind": "answer", "prompt": pid, "contestant": "x", "text": "x" * 20,
                  "tokens": 300, "wall_s": 4.0, "status": "ok"},
                 {"kind": "judgment", "prompt": pid, "a": "single", "b": "x",
                  "verdict": first, "status": "ok", "run_id": f"{pid}-1"},
                 {"kind": "judgment", "prompt": pid, "a": "x", "b": "single",
                  "verdict": second, "status": "ok", "run_id": f"{pid}-2"}]
    return rows


def test_text_report_counts_verdicts_flips_and_costs() -> None:
    text_report: Any = importlib.import_module("text_report")
    # p1: x wins both orders; p2: single wins both; p3: flips (tie); p4: x wins
    rows = _arena_rows({"p1": ("B", "A"), "p2": ("A", "B"), "p3": ("A", "A"),
                        "p4": ("B", "A")})
    got = text_report.report(rows, "x")
    assert (got["wins"], got["ties"], got["losses"]) == (2, 1, 1)
    assert got["won_of_decisive"] == pytest.approx(2 / 3, abs=1e-3)
    assert got["flip_rate"] == 0.25 and got["token_ratio"] == 3.0
    assert (got["tokens_per_prompt"], got["s_per_prompt"]) == (300.0, 4.0)
    assert got["longer_won"] == pytest.approx(2 / 3)


def test_text_report_exact_match_pairs_the_cases_both_answered(tmp_path: Path) -> None:
    text_report: Any = importlib.import_module("text_report")
    rows = []
    for case, (s, x) in {"c1": (True, False), "c2": (False, False), "c3": (True, True)}.items():
        for soc, right in (("single", s), ("x", x)):
            rows.append({"case": case, "society": soc, "gold": "bank",
                         "answer": "bank" if right else "the river bank", "correct": right,
                         "prompt_tokens": 10, "completion_tokens": 5, "wall_s": 1.0,
                         "status": "ok"})
    rows.append({"case": "c4", "society": "x", "gold": "a", "answer": None, "correct": False,
                 "prompt_tokens": 0, "completion_tokens": 0, "wall_s": 0.0,
                 "status": "error"})
    got = text_report.exact(write_jsonl(tmp_path / "r.jsonl", rows))
    assert got["cases"] == 3  # c4: no single answer, and x's failed
    x = got["societies"]["x"]
    assert (x["exact_n"], x["contains_gold"]) == (1, 3)
    assert (x["mcnemar"]["b10"], x["mcnemar"]["b01"]) == (1, 0)
