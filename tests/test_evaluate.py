"""`minsky eval`: resumable per-case results, Wilson intervals, paired tests, matched votes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from minsky.cli import main


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
    debate = tmp_path / "d.toml"
    debate.write_text(
        'name = "mini-debate"\norganisation = "debate"\nmodel = "echo:"\n[params]\nrounds = 2\n'
        '[[agents]]\nname = "d"\ngroup = "debater"\ncount = 2\n'
    )
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


def test_eval_bad_bench_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--bench", str(tmp_path / "nope.jsonl"),
                                       "--society", "single"])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output and "Traceback" not in result.output
