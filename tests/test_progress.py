"""The progress bar of the long commands (issue 29 item 6): done/total on stderr while
they run, hidden under --json and when stderr is not a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from minsky.cli import main
from minsky.cli.progress import progress_bar


def gsm8k(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                        "answer": f"#### {2 * i}"}) + "\n" for i in range(n)))
    return path


def test_the_bar_is_hidden_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1+1?\nWhat is 2+2?\n")
    result = CliRunner().invoke(main, ["batch", str(questions), "-s", "single", "-m", "echo:"])
    assert result.exit_code == 0, result.output
    # the lines about each question stay plain lines; no bar is drawn
    assert "━" not in result.stderr and "2/2" not in result.stderr
    assert any(line.startswith("1: ") for line in result.stderr.splitlines())


def test_the_bar_is_hidden_when_asked(terminal: io.StringIO) -> None:
    with progress_bar("x", 3, hidden=True) as bar:
        bar.advance("figure")
        assert not bar.shown
    assert terminal.getvalue() == ""


def test_batch_shows_done_of_total_and_resumes_from_what_is_done(
        tmp_path: Path, terminal: io.StringIO) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1+1?\nWhat is 2+2?\nWhat is 3+3?\n")
    args = ["batch", str(questions), "-s", "single", "-m", "echo:"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    drawn = terminal.getvalue()
    assert "single" in drawn and "3/3" in drawn
    assert "1: " in drawn  # the per-question lines go above the bar
    # a question added later: the bar starts from the three already answered
    questions.write_text(questions.read_text() + "What is 4+4?\n")
    terminal.truncate(0)
    terminal.seek(0)
    assert CliRunner().invoke(main, args).exit_code == 0
    assert "4/4" in terminal.getvalue() and "0/4" not in terminal.getvalue()


def test_eval_draws_its_bar_through_the_same_helper_and_hides_it_under_json(
        tmp_path: Path, terminal: io.StringIO) -> None:
    bench = gsm8k(tmp_path / "b.jsonl", 3)
    args = ["eval", "--bench", str(bench), "-s", "single", "-m", "echo:",
            "--out", str(tmp_path / "r.jsonl")]
    assert CliRunner().invoke(main, [*args, "--json"]).exit_code == 0
    assert terminal.getvalue() == ""
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r2.jsonl")]).exit_code == 0
    assert "3/3" in terminal.getvalue() and "accuracy" in terminal.getvalue()


def test_arena_counts_answers_and_judgments(tmp_path: Path, terminal: io.StringIO) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"turns": ["Name a colour."]}\n{"turns": ["Name a fruit."]}\n')
    args = ["arena", "--prompts", str(prompts),
            "--contestant", "single", "--contestant", "vote3", "--judge", "single",
            "--model", "echo:", "--out", str(tmp_path / "a.jsonl")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # 2 prompts × (2 answers + 2 judgments, one per order)
    assert "arena" in terminal.getvalue() and "8/8" in terminal.getvalue()
    assert "leaderboard" not in result.stderr
    terminal.truncate(0)
    terminal.seek(0)
    assert CliRunner().invoke(main, [*args, "--json"]).exit_code == 0
    assert terminal.getvalue() == ""


def test_economy_run_counts_both_streams(tmp_path: Path, terminal: io.StringIO) -> None:
    bench = gsm8k(tmp_path / "b.jsonl", 4)
    result = CliRunner().invoke(main, [
        "economy", "run", "--society", "vote3", "--model", "echo:", "--bench", str(bench),
        "--generations", "2", "--limit", "2", "--out", str(tmp_path / "eco.jsonl")])
    assert result.exit_code == 0, result.output
    drawn = terminal.getvalue()
    assert "8/8" in drawn and "economy off: accuracy" in drawn
