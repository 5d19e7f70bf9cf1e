"""The `minsky` command line, run in-process with click's CliRunner on the echo backend.

With the echo backend every member repeats its prompt, so the extracted answer is some
number from the question text: these tests assert structure, not the answer's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from minsky.cli import main
from minsky.society import DEFAULT_SOCIETY, builtin_names

# `echo:` (nothing after the scheme) is what the docs use, but see
# test_ask_with_the_bare_echo_scheme: it does not reach the echo backend
ECHO = "echo:cli"
QUESTION = "What is 2+3?"
BUILTINS = {
    "single": ("single", 1), "vote3": ("vote", 3), "vote5": ("vote", 5), "vote9": ("vote", 9),
    "consensus": ("consensus", 11),
}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ask_json(*extra: str, society: str = "vote3") -> dict[str, Any]:
    result = cli("ask", QUESTION, "--model", ECHO, "--society", society, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit 2, one line on stderr starting with "error: ", no traceback anywhere."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line
    assert result.stdout == ""
    return line


# -- ask -----------------------------------------------------------------------------------


def test_ask_with_the_bare_echo_scheme() -> None:
    result = cli("ask", QUESTION, "--model", "echo:", "--society", "vote3", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["members"]) == 3


def test_ask_json_has_the_stable_keys() -> None:
    data = ask_json()
    for key in ("run_id", "society", "question", "kind", "status", "answer", "members",
                "tally", "usage", "wall_s", "rounds", "error"):
        assert key in data
    assert data["society"] == "vote3"
    assert data["question"] == QUESTION
    assert data["kind"] == "number"
    assert data["status"] == "ok"
    assert data["error"] is None
    assert len(data["run_id"]) == 26
    assert [m["name"] for m in data["members"]] == ["solver-1", "solver-2", "solver-3"]
    for member in data["members"]:
        assert set(member) >= {"name", "answer", "text", "round"}
        assert QUESTION in member["text"]  # the echo backend repeats the prompt
    assert set(data["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert isinstance(data["wall_s"], float)
    assert [r["label"] for r in data["rounds"]] == ["answer"]
    assert len(data["rounds"][0]["turns"]) == 3


def test_ask_json_prints_only_json() -> None:
    result = cli("ask", QUESTION, "--model", ECHO, "--society", "single", "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # nothing but the object on stdout
    assert result.stderr == ""  # and no progress lines in --json mode


def test_ask_single_has_one_member() -> None:
    data = ask_json(society="single")
    assert [m["name"] for m in data["members"]] == ["solver"]
    assert data["tally"] is None


def test_ask_human_output_and_progress_on_stderr() -> None:
    result = cli("ask", QUESTION, "--model", ECHO, "--society", "vote3")
    assert result.exit_code == 0, result.output
    assert "society vote3 · 3 member(s) · models echo:cli" in result.stderr
    assert "round 1: answer (3 asks)" in result.stderr
    assert "answer:" in result.stdout
    for name in ("solver-1", "solver-2", "solver-3"):
        assert name in result.stdout
    assert "status ok" in result.stdout


def test_ask_answer_kind_option() -> None:
    data = ask_json("--answer", "text")
    assert data["kind"] == "text"


def test_ask_with_a_society_file(tmp_path: Path) -> None:
    path = tmp_path / "pair.toml"
    path.write_text(
        'name = "pair"\norganisation = "vote"\n[[agents]]\nname = "x"\n[[agents]]\nname = "y"\n',
        encoding="utf-8",
    )
    data = ask_json(society=str(path))
    assert data["society"] == "pair"
    assert [m["name"] for m in data["members"]] == ["x", "y"]


def test_ask_no_log_writes_nothing() -> None:
    ask_json("--no-log")
    result = cli("logs", "list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_ask_logs_under_minsky_home(minsky_home: Path) -> None:
    ask_json()
    assert (minsky_home / "logs.db").is_file()


def test_ask_without_a_question_exits_2() -> None:
    result = cli("ask", "--model", ECHO, "--society", "vote3")
    assert_one_line_error(result, "QUESTION")


def test_ask_with_a_malformed_society_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "bad"\norganisation = "vote"\n[[agents]]\nname = "s"\n'
        "options = { temperatur = 0.7 }\n",
        encoding="utf-8",
    )
    result = cli("ask", QUESTION, "--model", ECHO, "--society", str(path))
    line = assert_one_line_error(result, "agents.0.options.temperatur")
    assert line.startswith(f"error: {path}: ")


def test_ask_with_invalid_toml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = \n", encoding="utf-8")
    result = cli("ask", QUESTION, "--model", ECHO, "--society", str(path), "--json")
    line = assert_one_line_error(result, "not valid TOML")
    assert line.startswith(f"error: {path}: ")


def test_ask_with_an_unknown_society_exits_2() -> None:
    assert_one_line_error(cli("ask", QUESTION, "--model", ECHO, "--society", "vote4"), "vote4")


def test_ask_with_an_unknown_model_exits_2() -> None:
    result = cli("ask", QUESTION, "--model", "no-such-model", "--society", "single", "--json")
    assert_one_line_error(result, "no-such-model")


def test_an_unknown_model_lists_the_backends_too() -> None:
    line = assert_one_line_error(cli("ask", QUESTION, "--model", "gpt5", "--society",
                                     "single", "--json"), "'gpt5'")
    assert "qwen0.5b" in line and "echo:MODEL" in line and "openai:MODEL" in line


def test_no_answer_is_a_dash_and_the_reason_never_none() -> None:
    # echo repeats "say hello": no number in any reply
    result = cli("ask", "Say hello.", "--model", ECHO, "--society", "vote3", "--answer",
                 "number")
    assert result.exit_code == 0, result.output
    assert "answer: — (no answer could be read from the replies)" in result.stdout
    assert "None" not in result.stdout
    run_id = json.loads(cli("logs", "list", "--json").stdout)[0]["id"]
    shown = cli("logs", "show", run_id)
    assert "decision: — (no answer could be read from the replies)" in shown.stdout
    assert "None" not in shown.stdout
    listed = cli("logs", "list")
    assert "None" not in listed.stdout and "—" in listed.stdout


def test_ask_with_a_bad_backend_option_exits_2() -> None:
    result = cli("ask", QUESTION, "--model", ECHO, "--parallel", "0")
    assert_one_line_error(result, "option --parallel")


def test_ask_with_an_unknown_answer_kind_is_a_usage_error() -> None:
    result = cli("ask", QUESTION, "--model", ECHO, "--answer", "essay")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- resume --------------------------------------------------------------------------------


def test_resume_replays_the_logged_run() -> None:
    first = ask_json()
    result = cli("ask", "--resume", first["run_id"], "--model", ECHO, "--json")
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["run_id"] == first["run_id"]
    assert again["question"] == QUESTION
    assert again["answer"] == first["answer"]
    assert [m["text"] for m in again["members"]] == [m["text"] for m in first["members"]]
    shown = json.loads(cli("logs", "show", first["run_id"], "--json").stdout)
    assert [c["replayed"] for c in shown["calls"]] == [1, 1, 1]


def test_resume_keeps_the_original_model(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ask_json()
    # if resume forgets the model, it falls back to this one and fails fast
    monkeypatch.setenv("MINSKY_MODEL", "no-such-model")
    result = cli("ask", "--resume", first["run_id"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == first["run_id"]


def test_resume_of_an_unknown_run_exits_2() -> None:
    assert_one_line_error(cli("ask", "--resume", "NOPE", "--model", ECHO), "NOPE")


def test_resume_without_the_log_exits_2() -> None:
    assert_one_line_error(cli("ask", "--resume", "NOPE", "--no-log"), "--no-log")


# -- logs ----------------------------------------------------------------------------------


def test_logs_show_json_has_the_run_with_its_messages() -> None:
    data = ask_json()
    result = cli("logs", "show", data["run_id"], "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["id"] == data["run_id"]
    assert run["question"] == QUESTION
    assert run["status"] == "ok"
    assert run["answer"] == data["answer"]
    assert [c["agent"] for c in run["calls"]] == ["solver-1", "solver-2", "solver-3"]
    assert [m["role"] for m in run["messages"]] == ["system", "user", "assistant"] * 3
    assert all(QUESTION in m["content"] for m in run["messages"] if m["role"] == "user")
    assert run["outcome"]["answer"] == data["answer"]


def test_logs_show_transcript() -> None:
    data = ask_json()
    result = cli("logs", "show", data["run_id"])
    assert result.exit_code == 0, result.output
    assert data["run_id"] in result.stdout
    assert "round 1: answer" in result.stdout
    assert "solver-3" in result.stdout
    assert "decision:" in result.stdout


def test_logs_show_transcript_names_the_society() -> None:
    data = ask_json()
    result = cli("logs", "show", data["run_id"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert "society vote3" in header
    assert "{" not in result.stdout.split("question:")[0]


def test_logs_show_of_an_unknown_run_exits_2() -> None:
    ask_json()
    line = assert_one_line_error(cli("logs", "show", "NOPE"), "'NOPE'")
    assert "not in the log" in line


def test_logs_list_json_newest_first() -> None:
    first = ask_json()
    second = ask_json(society="single")
    result = cli("logs", "list", "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert [r["society"] for r in runs] == ["single", "vote3"]
    assert runs[0]["question"] == QUESTION
    assert runs[0]["status"] == "ok"
    assert runs[0]["answer"] == second["answer"]
    limited = json.loads(cli("logs", "list", "-n", "1", "--json").stdout)
    assert [r["id"] for r in limited] == [second["run_id"]]


def test_logs_list_text() -> None:
    data = ask_json()
    result = cli("logs", "list")
    assert result.exit_code == 0, result.output
    header, line = result.stdout.strip().splitlines()
    assert header.split() == ["run", "date", "society", "status", "tokens", "answer",
                              "question"]
    assert line.startswith(data["run_id"])
    assert "vote3" in line and "ok" in line and QUESTION in line


def test_logs_list_of_an_empty_log() -> None:
    result = cli("logs", "list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


# -- societies, models, version ------------------------------------------------------------


def test_societies_json_lists_the_builtins() -> None:
    result = cli("societies", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == builtin_names()
    shapes = {r["name"]: (r["organisation"], r["members"]) for r in rows}
    assert {name: shapes.get(name) for name in BUILTINS} == BUILTINS
    assert all(r["description"] for r in rows)
    assert [r["name"] for r in rows if r["default"]] == [DEFAULT_SOCIETY] == ["consensus"]


def test_societies_text() -> None:
    result = cli("societies")
    assert result.exit_code == 0
    header, *lines = result.stdout.strip().splitlines()
    assert header.split() == ["society", "organisation", "members", "description"]
    assert [line.lstrip("* ").split()[0] for line in lines] == builtin_names()
    assert [line.split()[1] for line in lines if line.startswith("*")] == [DEFAULT_SOCIETY]
    assert set(BUILTINS) <= set(builtin_names())


def test_models_lists_the_shipped_models_and_marks_the_default() -> None:
    result = cli("models")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.strip().splitlines()
    assert header.split() == ["model", "description"]
    assert len(lines) == 3
    default = [line for line in lines if line.startswith("*")]
    assert len(default) == 1 and "qwen0.5b" in default[0]


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert "0.1.0" in result.stdout


def test_echo_takes_a_delay() -> None:
    import time

    start = time.perf_counter()
    ok = cli("ask", QUESTION, "-m", "echo:0.3", "-s", "single", "--json")
    assert ok.exit_code == 0, ok.output
    assert time.perf_counter() - start >= 0.3
    bad = cli("ask", QUESTION, "-m", "echo:-1", "-s", "single")
    assert bad.exit_code == 2
    assert "model 'echo:-1': a delay is 0 to 3600 seconds" in bad.output
