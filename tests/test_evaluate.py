"""`minsky eval`: resumable per-case results, Wilson intervals, paired tests, matched votes."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from minsky.backends.base import Backend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.messages import ChatReply, ChatRequest, Usage


def gsm8k_file(path: Path, n: int = 6) -> Path:
    rows = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
            for i in range(1, n + 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def society_file(path: Path, name: str, organisation: str = "single", count: int = 1) -> Path:
    path.write_text(
        f'name = "{name}"\norganisation = "{organisation}"\nmodel = "echo:"\n'
        f'[[agents]]\nname = "solver"\ncount = {count}\n'
    )
    return path


def debate_file(path: Path) -> Path:
    """Two debaters over two rounds on the echo backend: four calls a case."""
    path.write_text(
        'name = "mini-debate"\norganisation = "debate"\nmodel = "echo:"\n[params]\nrounds = 2\n'
        '[[agents]]\nname = "d"\ngroup = "debater"\ncount = 2\n'
    )
    return path


def run_eval(*args: str):
    return CliRunner().invoke(main, ["eval", *args, "--json"])


def test_eval_reports_accuracy_intervals_and_paired_test(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl")
    a = society_file(tmp_path / "a.toml", "echo-one")
    b = society_file(tmp_path / "b.toml", "echo-three", "vote", 3)
    out = tmp_path / "res.jsonl"
    result = run_eval("--bench", str(bench), "--society", str(a), "--society", str(b),
                      "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["society"] for r in summary["results"]] == ["echo-one", "echo-three"]
    for r in summary["results"]:
        assert r["n"] == 6
        assert 0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1
        assert r["total_tokens"] > 0 and r["wall_s"] >= 0
    assert summary["paired"][0]["a"] == "echo-one" and summary["paired"][0]["b"] == "echo-three"
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum("case" in r for r in rows) == 12
    assert {r["gold"] for r in rows if "case" in r} == {"2", "4", "6", "8", "10", "12"}


def test_eval_table_shows_intervals_token_totals_and_the_paired_test(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl")
    a = society_file(tmp_path / "a.toml", "echo-one")
    b = society_file(tmp_path / "b.toml", "echo-three", "vote", 3)
    out = tmp_path / "res.jsonl"
    args = ["eval", "--bench", str(bench), "--society", str(a), "--society", str(b),
            "--out", str(out)]
    summary = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    shown = CliRunner().invoke(main, args)  # everything is done: the table from the file
    assert shown.exit_code == 0, shown.output
    for r in summary["results"]:
        row = next(line for line in shown.stdout.splitlines() if f" {r['society']} " in line)
        assert f"{r['ci_low']:.1%}–{r['ci_high']:.1%}" in row
        assert f"{r['total_tokens']:,}" in row
    p = summary["paired"][0]
    assert f"echo-three vs echo-one: {p['difference']:+.1%} on 6 shared cases" in shown.stdout


def test_eval_resumes_without_redoing_finished_cases(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl")
    a = society_file(tmp_path / "a.toml", "echo-one")
    out = tmp_path / "res.jsonl"
    first = run_eval("--bench", str(bench), "--society", str(a), "--out", str(out),
                     "--limit", "3")
    assert first.exit_code == 0, first.output
    # simulate a crash after the third case: the next run with all six does three more
    again = run_eval("--bench", str(bench), "--society", str(a), "--out", str(out))
    assert again.exit_code == 0, again.output
    rows = [json.loads(x) for x in out.read_text().splitlines() if '"case"' in x]
    assert len(rows) == 6
    assert len({r["case"] for r in rows}) == 6
    summary = json.loads(again.stdout)
    assert summary["results"][0]["n"] == 6


def test_eval_matched_vote_and_plot(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", 3)
    debate = debate_file(tmp_path / "d.toml")
    plot = tmp_path / "scaling.png"
    result = run_eval("--bench", str(bench), "--society", str(debate), "--matched",
                      "--model", "echo:", "--out", str(tmp_path / "r.jsonl"), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    names = [r["society"] for r in summary["results"]]
    # two debaters over two rounds make four calls a case: matched with four samples
    assert names == ["mini-debate", "vote@4"]
    assert summary["results"][0]["calls_per_case"] == 4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_first_runs_a_prefix_of_the_seeded_sample(tmp_path: Path) -> None:
    from minsky.evals.benchmarks import load_benchmark

    bench = gsm8k_file(tmp_path / "many.jsonl", 300)
    a = society_file(tmp_path / "a.toml", "echo-one")
    sample = [c.id for c in load_benchmark(bench, 100, 0)]
    out = tmp_path / "res.jsonl"
    for first in (5, 12):  # a staged run: each stage extends the one before
        result = run_eval("--bench", str(bench), "--society", str(a), "--limit", "100",
                          "--seed", "0", "--first", str(first), "--out", str(out))
        assert result.exit_code == 0, result.output
    cases = [json.loads(line)["case"] for line in out.read_text().splitlines()
             if '"case"' in line]
    assert cases == sample[:12]
    # a smaller seeded sample is not a prefix of the larger one: why --first exists
    assert [c.id for c in load_benchmark(bench, 12, 0)] != sample[:12]


def test_eval_bad_bench_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--bench", str(tmp_path / "nope.jsonl"),
                                       "--society", "single"])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output and "Traceback" not in result.output


async def test_vote_rows_keep_member_votes_and_prefixes_rescore_them(tmp_path: Path) -> None:
    from minsky.backends.fakes import FunctionBackend
    from minsky.backends.registry import Backends
    from minsky.evals.harness import evaluate_society, summarise, vote_prefixes
    from minsky.plugin_api import Case
    from minsky.runner import Runner
    from minsky.society import from_dict

    society = from_dict({"name": "v5", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "s", "count": 5,
                                     "options": {"temperature": 0.7, "seed": 10}}]}, "v.toml")
    said = {10: "1", 11: "2", 12: "2", 13: "3", 14: "3"}  # by seed: member order
    backend = FunctionBackend(lambda r: f"The answer is {said[r.options.seed]}.")
    runner = Runner(Backends(overrides={"fake:x": backend}))
    out = tmp_path / "r.jsonl"
    await evaluate_society(runner, society, [Case("q1", "What is 1+1?", "2", "number")], out)
    (row,) = [json.loads(x) for x in out.read_text().splitlines() if '"case"' in x]
    assert row["votes"] == ["1", "2", "2", "3", "3"]
    assert len(row["member_tokens"]) == 5 and all(t[1] > 0 for t in row["member_tokens"])
    derived = vote_prefixes([row], "v5", [1, 3, 5])
    # first 1: "1" (wrong); first 3: "2" twice; all 5: 2-2 tie, the first given ("2") wins
    assert [(d["society"], d["answer"], d["correct"]) for d in derived] == [
        ("v5[:1]", "1", False), ("v5[:3]", "2", True), ("v5[:5]", "2", True)]
    assert derived[-1]["answer"] == row["answer"]  # the full prefix is the vote itself
    assert derived[1]["completion_tokens"] == sum(t[1] for t in row["member_tokens"][:3])
    summary = summarise([row, *derived], ["v5[:1]", "v5[:3]", "v5"])
    assert [(r["society"], r["calls_per_case"], r["wall_s"] is None)
            for r in summary["results"]] == [("v5[:1]", 1, True), ("v5[:3]", 3, True),
                                              ("v5", 5, False)]


def test_eval_prefixes_adds_the_scaling_points(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", 3)
    v = society_file(tmp_path / "v.toml", "echo-five", "vote", 5)
    plot = tmp_path / "scaling.png"
    result = run_eval("--bench", str(bench), "--society", str(v), "--prefixes", "1,3",
                      "--out", str(tmp_path / "r.jsonl"), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["society"] for r in summary["results"]] == [
        "echo-five[:1]", "echo-five[:3]", "echo-five"]
    assert [r["n"] for r in summary["results"]] == [3, 3, 3]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run_eval("--bench", str(bench), "--society", str(v), "--prefixes", "7",
                   "--out", str(tmp_path / "r.jsonl"))
    assert bad.exit_code != 0 and "--prefixes 7: echo-five has 5 members" in bad.output


def test_wall_time_is_the_union_of_the_runs_in_flight() -> None:
    from ulid import ULID

    from minsky.evals.harness import busy_seconds

    def row(start: float, wall: float) -> dict:
        return {"run_id": str(ULID.from_timestamp(1_700_000_000.0 + start)), "wall_s": wall}

    # two overlapping runs (0–10, 4–12), a gap, then one more (100–105), unsorted,
    # and a row with no run log, which counts its own duration
    rows = [row(100, 5), row(4, 8), row(0, 10), {"run_id": None, "wall_s": 2.5}]
    assert busy_seconds(rows) == 12 + 5 + 2.5
    assert busy_seconds([]) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_a_stopped_eval_loses_nothing_and_the_rerun_resumes(
        tmp_path: Path, minsky_home: Path, stop: signal.Signals) -> None:
    import os
    import sqlite3
    import subprocess
    import sys
    import time

    bench = gsm8k_file(tmp_path / "mini.jsonl", n=12)
    slow = tmp_path / "slow.toml"
    slow.write_text('name = "slow"\norganisation = "single"\nmodel = "echo:0.3"\n'
                    '[[agents]]\nname = "solver"\n')
    out = tmp_path / "res.jsonl"
    cmd = [sys.executable, "-m", "minsky", "eval", "--bench", str(bench), "--society",
           str(slow), "--out", str(out), "--concurrency", "1"]
    # subtle: a test run started in the background (`pytest &`) ignores SIGINT, and its
    # children inherit that: the eval gets Ctrl-C's default back, as in a terminal
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def saved() -> list[str]:
        text = out.read_text() if out.exists() else ""
        return [json.loads(line)["case"] for line in text.splitlines() if '"case"' in line]

    deadline = time.monotonic() + 60
    while len(saved()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(stop)  # SIGINT is what Ctrl-C sends; SIGTERM what `kill` does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    with sqlite3.connect(minsky_home / "logs.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    # the run in flight when it stopped is marked, not left `running` for ever
    assert statuses.get("interrupted") == 1 and "running" not in statuses, statuses
    before = saved()
    assert 3 <= len(before) < 12
    again = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60,
                           env=os.environ.copy())
    assert again.returncode == 0, again.stderr
    after = saved()
    assert len(after) == len(set(after)) == 12  # nothing redone, nothing missing
    assert after[: len(before)] == before
    assert json.loads(again.stdout)["results"][0]["n"] == 12


def test_matched_vote_is_read_off_a_larger_vote_in_the_same_evaluation(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", 3)
    debate = debate_file(tmp_path / "d.toml")
    out = tmp_path / "r.jsonl"
    # vote9 is vote5's agent nine times: its first four members are the 4-sample vote
    result = run_eval("--bench", str(bench), "--society", str(debate), "--society", "vote9",
                      "--matched", "--model", "echo:", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["society"] for r in summary["results"]] == ["mini-debate", "vote9[:4]", "vote9"]
    assert summary["results"][1]["calls_per_case"] == 4
    (pair,) = summary["matched"]
    assert (pair["a"], pair["b"], pair["cases"]) == ("vote9[:4]", "mini-debate", 3)
    saved = {json.loads(x)["society"] for x in out.read_text().splitlines() if '"case"' in x}
    assert saved == {"mini-debate", "vote9"}  # no vote@4 was sampled


def test_prefixes_skip_a_vote_own_size_and_need_a_vote(tmp_path: Path) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", 2)
    five = society_file(tmp_path / "v5.toml", "v5", "vote", 5)
    nine = society_file(tmp_path / "v9.toml", "v9", "vote", 9)
    out = str(tmp_path / "r.jsonl")
    result = run_eval("--bench", str(bench), "--society", str(five), "--society", str(nine),
                      "--prefixes", "1,5,7", "--out", out)
    assert result.exit_code == 0, result.output
    assert [r["society"] for r in json.loads(result.stdout)["results"]] == [
        "v5[:1]", "v5", "v9[:1]", "v9[:5]", "v9[:7]", "v9"]
    one = society_file(tmp_path / "one.toml", "one")
    bad = run_eval("--bench", str(bench), "--society", str(one), "--prefixes", "3",
                   "--out", out)
    assert bad.exit_code == 2 and "--prefixes: no vote society" in bad.output


def test_a_single_on_another_model_is_a_level_on_the_plot() -> None:
    from minsky.evals.harness import plot_levels
    from minsky.society import load

    socs = [load("single", "echo:"), load("vote9", "echo:"), load("single-1.5b")]
    assert plot_levels(socs) == {"single-1.5b": "qwen1.5b"}


class Flaky(Backend):
    """Answers "What is i + i?" right, except that the questions in `dead` get an error
    reply, as from a server that refused the connection."""

    name = "flaky"

    def __init__(self, dead: set[int]) -> None:
        self.dead = dead
        self.asked: list[int] = []

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        replies = []
        for request in requests:
            i = int(re.findall(r"What is (\d+) \+", request.messages[-1].content)[-1])
            self.asked.append(i)
            replies.append(ChatReply("", finish_reason="error", error="connection refused")
                           if i in self.dead else
                           ChatReply(f"The answer is {2 * i}.", Usage(5, 5)))
        return replies


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Flaky:
    """The `echo:` model of every command replaced by one `Flaky` backend (its `dead` set
    empty: all answer)."""
    backend = Flaky(set())
    real = Backends.get

    def get(self: Backends, spec: str) -> Backend:
        return backend if spec.startswith("echo:") else real(self, spec)

    monkeypatch.setattr(Backends, "get", get)
    return backend


def test_failed_cases_are_errors_apart_exit_1_and_a_rerun_retries_only_them(
        tmp_path: Path, flaky: Flaky) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", n=4)
    a = society_file(tmp_path / "a.toml", "echo-one")
    out, plot = tmp_path / "res.jsonl", tmp_path / "p.png"
    args = ["eval", "--bench", str(bench), "--society", str(a), "--out", str(out)]
    flaky.dead = {2}
    result = CliRunner().invoke(main, [*args, "--json", "--plot", str(plot)])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["failed"] == 1 and plot.exists()
    row = summary["results"][0]
    assert (row["n"], row["correct"], row["accuracy"], row["failed"]) == (3, 3, 1.0, 1)
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 case(s) failed (echo-one 1) and are left out of accuracy; rerunning the "
        "same command retries them")
    # --no-retry-errors keeps the error; the table shows it apart from the answers
    shown = CliRunner().invoke(main, [*args, "--no-retry-errors"])
    assert shown.exit_code == 1 and flaky.asked == [1, 2, 3, 4]
    assert "3 + 1 error" in shown.stdout and "100.0%" in shown.stdout
    assert "--no-retry-errors" in shown.stderr
    flaky.dead = set()  # the server is back: the rerun asks the failed case, only it
    again = CliRunner().invoke(main, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert flaky.asked == [1, 2, 3, 4, 2]
    row = json.loads(again.stdout)["results"][0]
    assert (row["n"], row["correct"], row["failed"]) == (4, 4, 0)


def test_a_society_whose_every_case_failed_is_kept_with_its_errors(
        tmp_path: Path, flaky: Flaky) -> None:
    bench = gsm8k_file(tmp_path / "mini.jsonl", n=2)
    a = society_file(tmp_path / "a.toml", "echo-one")
    flaky.dead = {1, 2}
    args = ["eval", "--bench", str(bench), "--society", str(a), "--out",
            str(tmp_path / "r.jsonl")]
    result = CliRunner().invoke(main, [*args, "--json", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 1, result.output
    row = json.loads(result.stdout)["results"][0]
    assert (row["society"], row["n"], row["failed"], row["accuracy"]) == ("echo-one", 0, 2,
                                                                         None)
    shown = CliRunner().invoke(main, [*args, "--no-retry-errors"])
    assert shown.exit_code == 1 and "0 + 2 errors" in shown.stdout, shown.output


def test_batch_counts_failed_questions_apart_and_exits_1(tmp_path: Path, flaky: Flaky) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1 + 1?\nWhat is 2 + 2?\nWhat is 3 + 3?\n")
    args = ["batch", str(questions), "-s", str(society_file(tmp_path / "a.toml", "one"))]
    flaky.dead = {2}
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stdout.strip() == (f"3 question(s) · 2 answered now · 1 failed · results "
                                     f"{tmp_path / 'q.one.results.jsonl'}")
    err = result.stderr.splitlines()
    assert any(line.startswith("2: — (the run failed: ") and "connection refused" in line
               for line in err), err
    assert "None" not in result.stderr
    assert err[-1].startswith("error: 1 of 3 question(s) failed (their rows in ")
    flaky.dead = set()
    again = CliRunner().invoke(main, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"questions": 3, "answered_now": 1, "failed": 0,
                                        "out": str(tmp_path / "q.one.results.jsonl")}
    assert flaky.asked[-1] == 2
