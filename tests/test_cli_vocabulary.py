"""One vocabulary in the CLI and its JSON (issue 29 item 5): the run id is `run_id`
everywhere, `societies --json` says what `/v1/models` says, `wall_s` has three decimals
everywhere, every human table has a header row, and every command that reads or writes
the run log takes `--log PATH`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from minsky.cli import main
from minsky.society import load

QUESTION = "What is 2+3?"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def asked(*extra: str) -> dict[str, Any]:
    result = cli("ask", QUESTION, "-m", "echo:", "-s", "vote3", "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_logs_call_the_run_id_run_id_and_keep_id() -> None:
    run = asked()
    (listed,) = json.loads(cli("logs", "list", "--json").stdout)
    assert listed["run_id"] == listed["id"] == run["run_id"]
    shown = json.loads(cli("logs", "show", run["run_id"], "--json").stdout)
    assert shown["run_id"] == shown["id"] == run["run_id"]


def test_wall_s_has_three_decimals_in_the_log_as_in_results() -> None:
    asked()
    (listed,) = json.loads(cli("logs", "list", "--json").stdout)
    assert listed["wall_s"] == round(listed["wall_s"], 3)


def test_batch_rows_round_wall_s_as_eval_rows_do() -> None:
    import asyncio
    from dataclasses import replace

    from minsky.batch import _row
    from minsky.results import Item
    from minsky.runner import Runner

    result = asyncio.run(Runner().run(load("single", "echo:"), "What is 1+1?"))
    row = _row(Item("1", "What is 1+1?"), replace(result, wall_s=0.012345))
    # three decimals, as eval's rows, `ask --json` and serve give it (it was two)
    assert row["wall_s"] == 0.012 == replace(result, wall_s=0.012345).to_dict()["wall_s"]


def test_societies_json_gives_the_models_and_budget_serve_shows() -> None:
    pytest.importorskip("fastapi")
    from minsky.runner import Runner
    from minsky.serve.app import Served, ServeSettings

    rows = {r["name"]: r for r in json.loads(cli("societies", "--json").stdout)}
    socs = {name: load(name) for name in rows}
    served = Served(socs, Runner(), ServeSettings())
    for name, row in rows.items():
        card = served.model_card(name)["minsky"]
        assert (row["models"], row["budget"]) == (card["models"], card["budget"])
        assert (row["organisation"], row["description"]) == (card["organisation"],
                                                             card["description"])
        assert row["members"] == len(card["members"])
    assert rows["consensus"]["models"] and "max_tokens" in rows["consensus"]["budget"]


@pytest.mark.parametrize(("listing", "heading"), [
    (["plugins"], ["kind", "name", "plugin", "description"]),
    (["societies"], ["society", "organisation", "members", "description"]),
    (["models"], ["model", "description"]),
])
def test_every_listing_has_a_header_row(listing: list[str], heading: list[str]) -> None:
    result = cli(*listing)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == heading


def test_logs_list_shows_date_and_tokens() -> None:
    run = asked()
    header, line = cli("logs", "list").stdout.strip().splitlines()
    assert header.split() == ["run", "date", "society", "status", "tokens", "answer",
                              "question"]
    tokens = run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"]
    cells = line.split()
    assert cells[0] == run["run_id"] and cells[5] == str(tokens)
    assert len(cells[1]) == 10 and cells[1][4] == "-"  # YYYY-MM-DD, then HH:MM


def test_logs_list_says_when_the_log_is_empty() -> None:
    result = cli("logs", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith("no runs in the run log ")


def test_the_arena_leaderboard_has_a_header_row(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"turns": ["Name a colour."]}\n')
    result = cli("arena", "--prompts", str(prompts), "--contestant", "single",
                 "--contestant", "vote3", "-m", "echo:", "--out", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["contestant", "rating", "95%", "CI", "elo", "W/T/L"]
    assert {line.split()[0] for line in lines[1:3]} == {"single", "vote3"}


# every command that reads or writes the run log (`view` and `serve` had it already)
LOGGING = [["ask"], ["batch"], ["eval"], ["arena"], ["economy", "run"],
           ["toolformer", "annotate"], ["logs", "list"], ["logs", "show"], ["star", "mine"],
           ["star", "run"], ["serve"], ["view"]]


@pytest.mark.parametrize("path", LOGGING, ids=" ".join)
def test_every_command_on_the_log_takes_log(path: list[str]) -> None:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert "--log" in {opt for p in command.params for opt in getattr(p, "opts", [])}


def test_ask_batch_and_logs_use_the_log_named(tmp_path: Path) -> None:
    log = tmp_path / "other.db"
    run = asked("--log", str(log))
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1+1?\n")
    assert cli("batch", str(questions), "-s", "single", "-m", "echo:",
               "--log", str(log)).exit_code == 0
    listed = json.loads(cli("logs", "list", "--log", str(log), "--json").stdout)
    assert len(listed) == 2 and listed[1]["run_id"] == run["run_id"]
    shown = cli("logs", "show", run["run_id"], "--log", str(log), "--json")
    assert json.loads(shown.stdout)["question"] == QUESTION
    # the default log has none of them
    assert json.loads(cli("logs", "list", "--json").stdout) == []


def test_reading_a_log_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    result = cli("logs", "list", "--log", str(tmp_path / "nope.db"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: no run log at {tmp_path / 'nope.db'}"
    assert not (tmp_path / "nope.db").exists()


def test_log_and_no_log_together_are_refused() -> None:
    result = cli("ask", QUESTION, "-m", "echo:", "--no-log", "--log", "x.db")
    assert result.exit_code == 2 and "--log and --no-log" in result.stderr
