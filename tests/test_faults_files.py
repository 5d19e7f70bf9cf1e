"""Fault injection, files and input: broken files, unusable folders, hostile text.

Every bad input is one line on stderr naming the file, field, option or path, exit code
2, no traceback — and, where it can be, found before any case runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from minsky.cli import main

ECHO = 'name = "e"\norganisation = "single"\nmodel = "echo:"\n[[agents]]\nname = "a"\n'


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result, *names: str) -> str:
    """The error line of a refused command; it must name each of `names`."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def bench(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                        "answer": f"#### {2 * i}"}) + "\n" for i in range(n)))
    return path


# --- undecodable and deeply nested input --------------------------------------------------


def test_a_society_file_that_is_not_utf8(tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_bytes(b'name = "t\xff"\n')
    one_line_error(run("ask", "q", "--society", str(society)), str(society), "UTF-8")


def test_a_society_file_in_utf16(tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_text(ECHO, encoding="utf-16")
    one_line_error(run("ask", "q", "--society", str(society)), str(society), "UTF-8")


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_a_questions_file_that_is_not_utf8(tmp_path: Path, suffix: str) -> None:
    questions = tmp_path / f"q{suffix}"
    questions.write_bytes(b'{"question": "caf\xe9"}\n')
    one_line_error(run("batch", str(questions), "--model", "echo:", "--society", "single"),
                   str(questions), "UTF-8")


def test_a_benchmark_line_nested_100000_deep(tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n")
    one_line_error(run("eval", "--bench", str(deep), "--society", "single", "--model", "echo:"),
                   f"{deep}:1", "nested")


def test_a_lone_surrogate_in_a_batch_question_is_that_question_only(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "What is 2+3? \\ud800"}\n{"question": "ok?"}\n')
    out = tmp_path / "out.jsonl"
    result = run("batch", str(questions), "--model", "echo:", "--society", "single",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == ["1", "2"]
    assert {r["status"] for r in rows} == {"ok"}
    assert "\ufffd" in rows[0]["question"] + rows[1]["question"]


def test_a_lone_surrogate_in_an_eval_case(tmp_path: Path) -> None:
    cases = tmp_path / "b.jsonl"
    cases.write_text('{"question": "What is 1+1? \\udc80", "answer": "#### 2"}\n'
                     '{"question": "What is 2+2?", "answer": "#### 4"}\n')
    out = tmp_path / "res.jsonl"
    result = run("eval", "--bench", str(cases), "--society", "single", "--model", "echo:",
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert len([r for r in map(json.loads, out.read_text().splitlines()) if "case" in r]) == 2


def test_invalid_utf8_on_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "MINSKY_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "minsky", "ask", b"what is \xff?", "--society", "single",
         "--model", "echo:", "--json"],
        capture_output=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert json.loads(done.stdout)["question"] == "what is \ufffd?"


# --- the home folder, --out and --plot ----------------------------------------------------


def test_a_home_that_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MINSKY_HOME", str(blocker / "home"))
    for args in (["ask", "q", "--society", "single", "--model", "echo:"], ["logs", "list"]):
        one_line_error(run(*args), "MINSKY_HOME", str(blocker / "home"))


def test_a_run_log_that_cannot_be_opened(minsky_home: Path) -> None:
    (minsky_home / "logs.db").mkdir(parents=True)  # what a read-only or broken home gives
    for args in (["ask", "q", "--society", "single", "--model", "echo:"], ["logs", "list"]):
        one_line_error(run(*args), "run log", str(minsky_home / "logs.db"), "--no-log")


def test_a_run_log_on_a_device_that_refuses_writes(minsky_home: Path) -> None:
    minsky_home.mkdir(parents=True)
    (minsky_home / "logs.db").symlink_to("/dev/full")  # every write: no space left
    one_line_error(run("ask", "q", "--society", "single", "--model", "echo:"), "run log")


@pytest.mark.parametrize("command", ["eval", "batch"])
def test_out_is_a_folder(tmp_path: Path, command: str) -> None:
    data = bench(tmp_path / "b.jsonl")
    args = ["--bench", str(data)] if command == "eval" else [str(data)]
    result = run(command, *args, "--society", "single", "--model", "echo:",
                 "--out", str(tmp_path))
    one_line_error(result, "--out", str(tmp_path), "folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not bind root")
def test_out_in_a_read_only_folder(tmp_path: Path) -> None:
    data = bench(tmp_path / "b.jsonl")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "res.jsonl"
    one_line_error(run("eval", "--bench", str(data), "--society", "single", "--model", "echo:",
                       "--out", str(out)), "--out", str(out))


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not bind root")
def test_a_read_only_home(minsky_home: Path) -> None:
    assert run("ask", "q", "--society", "single", "--model", "echo:").exit_code == 0
    minsky_home.chmod(0o500)
    try:
        for args in (["ask", "q", "--society", "single", "--model", "echo:"], ["logs", "list"]):
            result = run(*args)
            if result.exit_code != 0:
                one_line_error(result, "run log", str(minsky_home))
        # --no-log needs no writable home
        assert run("ask", "q", "--society", "single", "--model", "echo:",
                   "--no-log").exit_code == 0
    finally:
        minsky_home.chmod(0o700)


def test_plot_into_a_missing_folder_is_refused_before_any_case(tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    plot = tmp_path / "nope" / "p.png"
    result = run("eval", "--bench", str(bench(tmp_path / "b.jsonl")), "--society", "single",
                 "--model", "echo:", "--out", str(out), "--plot", str(plot))
    one_line_error(result, "--plot", str(plot.parent))
    assert not out.exists()  # found before a single case ran


def test_a_judge_template_with_an_unknown_placeholder(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"question_id": 1, "turns": ["Say hi."]}\n')
    judge = tmp_path / "judge.jsonl"
    judge.write_text(json.dumps({"name": "pair-v2", "system_prompt": "Judge.",
                                 "prompt_template": "{question} {answer_a} {answer_b} {oops}"})
                     + "\n")
    out = tmp_path / "arena.jsonl"
    result = run("arena", "--prompts", str(prompts), "--contestant", "single",
                 "--contestant", "vote3", "--model", "echo:", "--judge-prompts", str(judge),
                 "--out", str(out))
    one_line_error(result, str(judge), "{oops}")
    assert not out.exists()  # no contestant answered


def test_a_malformed_economy_file(tmp_path: Path) -> None:
    broken = tmp_path / "e.jsonl"
    broken.write_text('{"kind": "entry", "entry": {"kind": "mint"\n')
    one_line_error(run("economy", "audit", str(broken)), str(broken))


# --- society files: strict types, a member cap, linear loading, finite timeouts -----------


@pytest.mark.parametrize(("line", "field"), [
    ('count = "3"', "agents.0.count"),
    ('options = { max_tokens = "384" }', "agents.0.options.max_tokens"),
])
def test_society_values_are_typed_strictly(tmp_path: Path, line: str, field: str) -> None:
    society = tmp_path / "s.toml"
    society.write_text(ECHO + line + "\n")
    one_line_error(run("ask", "q", "--society", str(society)), str(society), field)


@pytest.mark.parametrize("table", ["[budget]", "[tool_limits]"])
def test_an_infinite_timeout_is_refused(tmp_path: Path, table: str) -> None:
    society = tmp_path / "s.toml"
    society.write_text(ECHO.replace("[[agents]]", f"{table}\ntimeout_s = inf\n[[agents]]"))
    one_line_error(run("ask", "q", "--society", str(society)), str(society), "timeout_s")


def test_members_are_capped(tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    agents = "".join(f'[[agents]]\nname = "a{i}"\ncount = 64\n' for i in range(5))
    society.write_text('name = "big"\norganisation = "vote"\nmodel = "echo:"\n' + agents)
    one_line_error(run("ask", "q", "--society", str(society)), str(society), "320 members",
                   "256")


def test_a_society_of_many_entries_is_refused_quickly(tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_text('name = "big"\norganisation = "vote"\nmodel = "echo:"\n'
                       + "".join(f'[[agents]]\nname = "a{i}"\n' for i in range(30_000)))
    start = time.perf_counter()
    one_line_error(run("ask", "q", "--society", str(society)), "30000 entries")
    assert time.perf_counter() - start < 6  # quadratic loading took ~15 s here


def test_a_huge_society_file_is_refused_unread(tmp_path: Path) -> None:
    society = tmp_path / "s.toml"
    society.write_text(ECHO + "# " + "x" * (5 * 1024 * 1024) + "\n")
    one_line_error(run("ask", "q", "--society", str(society)), str(society), "at most")


# --- terminal escapes are shown, never obeyed ---------------------------------------------


def test_logs_neutralise_terminal_control_characters() -> None:
    question = "hi \x1b]0;pwned\x07 \x1b[2J \x9b31m \x1b]52;c;Y2xpcA==\x07 there"
    assert run("ask", question, "--society", "single", "--model", "echo:").exit_code == 0
    listed = run("logs", "list")
    assert listed.exit_code == 0 and "\\x1b]0;pwned\\x07" in listed.stdout
    # the first word of the first row after the header row
    run_id = listed.stdout.splitlines()[1].split()[0]
    shown = run("logs", "show", run_id)
    assert shown.exit_code == 0 and "\\x1b]52;c" in shown.stdout
    for output in (listed.stdout, shown.stdout):
        assert not any(c in output for c in "\x1b\x07\x9b"), output
    raw = json.loads(run("logs", "show", run_id, "--json").stdout)
    assert raw["question"] == question  # the log and --json keep the text exact

