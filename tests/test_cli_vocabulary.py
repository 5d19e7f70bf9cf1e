"""One vocabulary in the CLI and its JSON (issue 29 item 5): the run id is `run_id`
everywhere, `societies --json` says what `/v1/models` says, `wall_s` has three decimals
everywhere and each epoch time an ISO 8601 UTC one beside it, every human table has a
header row, every command that reads or writes the run log takes `--log PATH`, every
command that prints a result is human by default and JSON under `--json` (`batch`,
`economy audit`, `toolformer annotate` too), `models --json` says what is on disk, and
`--limit`/`--seed` are one option each wherever they appear."""

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

    from minsky.cli.batch import _row
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


# -- --json on every command that prints a result; human output by default -----------


def test_batch_prints_a_line_and_json_under_json(tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1+1?\nWhat is 2+2?\n")
    out = tmp_path / "r.jsonl"
    args = ["batch", str(questions), "-s", "single", "-m", "echo:", "-o", str(out)]
    human = cli(*args)
    assert human.exit_code == 0, human.output
    assert human.stdout == f"2 question(s) · 2 answered now · 0 failed · results {out}\n"
    assert any(line.startswith("1: ") for line in human.stderr.splitlines())
    again = cli(*args, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"questions": 2, "answered_now": 0, "failed": 0,
                                        "out": str(out)}
    assert again.stderr == ""  # under --json, as for eval, only errors go to stderr


def test_economy_audit_is_a_line_and_json_under_json(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                         "answer": f"#### {2 * i}"}) + "\n" for i in range(2)))
    out = tmp_path / "eco.jsonl"
    ran = cli("economy", "run", "-s", "vote3", "-m", "echo:", "--bench", str(bench), "-g", "1",
              "-n", "2", "--no-compare", "-o", str(out))
    assert ran.exit_code == 0, ran.output
    human = cli("economy", "audit", str(out))
    assert human.exit_code == 0, human.output
    audit = json.loads(cli("economy", "audit", str(out), "--json").stdout)
    assert audit["conserved"] is True and audit["entries"] > 0
    assert human.stdout.strip() == (
        f"conserved: {audit['entries']} ledger entries replayed; money expected "
        f"{audit['expected_total']}, actual {audit['actual_total']}")


def test_toolformer_annotate_prints_a_table_and_json_under_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_toolformer import FakeModel

    from minsky.backends.registry import Backends

    monkeypatch.setattr(Backends, "get", lambda self, spec: FakeModel())
    corpus = tmp_path / "c.txt"
    corpus.write_text("Natalia sold 48/2 = 24 clips.\nOnly 1 and 2.\nThree.\n")
    out = tmp_path / "o.jsonl"
    args = ["toolformer", "annotate", "--corpus", str(corpus), "--out", str(out), "-n", "2"]
    human = cli(*args)
    assert human.exit_code == 0, human.output
    table = dict(line.strip().split(None, 1) for line in human.stdout.splitlines())
    assert table["texts"] == "2" and table["out"] == str(out)
    summary = json.loads(cli(*args, "--json").stdout)
    assert summary["texts"] == 2 and summary["out"] == str(out)
    assert table["calls_kept"] == str(summary["calls_kept"])


# -- models: size, path, chunks, and the checksum under --verify ----------------------


def _package(root: Path, name: str, data: bytes, file: str | None = None) -> None:
    """A model package on `root`: `file` at its top (one-package models) or, as a chunk,
    its one data/*.bin."""
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / file if file else folder / "data" / "part01.bin").write_bytes(data)


@pytest.fixture
def fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Only two small models are listed: `chunked` in three chunk packages (two of them
    installed) and `whole` in one package."""
    import hashlib

    from minsky.models import ShippedModel

    root = tmp_path / "site"
    chunks = [b"GGUF" + b"a" * 10, b"b" * 20, b"c" * 30]
    for i, data in enumerate(chunks[:2], 1):
        _package(root, f"fake_chunk_part{i}", data)
    _package(root, "fake_whole", b"GGUF whole", file="whole.gguf")
    monkeypatch.syspath_prepend(str(root))
    models = {
        "chunked": ShippedModel("chunked", "three chunks", tuple(
            f"fake_chunk_part{i}" for i in (1, 2, 3)), "chunked.gguf",
            hashlib.sha256(b"".join(chunks)).hexdigest(), "pip install fake-chunk"),
        "whole": ShippedModel("whole", "one package", ("fake_whole",), "whole.gguf", None,
                              "pip install fake-whole"),
    }
    monkeypatch.setattr("minsky.cli.info.MODELS", models)
    return {"root": root, "chunks": chunks, "models": models}


def _listed(*extra: str) -> tuple[Result, dict[str, dict[str, Any]]]:
    result = cli("models", "--json", *extra)
    return result, {r["name"]: r for r in json.loads(result.stdout)}


def test_models_json_says_which_chunks_are_missing(fake_models: dict[str, Any]) -> None:
    result, rows = _listed()
    assert result.exit_code == 0, result.output
    chunked, whole = rows["chunked"], rows["whole"]
    assert {"name", "installed", "default", "description", "path", "size", "sha256",
            "expected_sha256", "chunks"} <= set(chunked)
    assert chunked["installed"] is False and chunked["path"] is None
    assert chunked["size"] is None and chunked["sha256"] is None
    assert chunked["chunks"] == {"expected": 3, "found": 2, "complete": False}
    assert whole["installed"] is True and whole["chunks"]["complete"] is True
    assert whole["path"] == str(fake_models["root"] / "fake_whole" / "whole.gguf")
    assert whole["size"] == len(b"GGUF whole") and whole["sha256"] is None
    assert cli("models").stdout.splitlines()[1].split()[:3] == ["chunked", "2/3", "chunks"]


def test_models_verify_hashes_the_chunks_then_the_assembled_file(
        fake_models: dict[str, Any]) -> None:
    import hashlib

    chunks, chunked = fake_models["chunks"], fake_models["models"]["chunked"]
    _package(fake_models["root"], "fake_chunk_part3", chunks[2])
    _, rows = _listed()
    # every chunk there but not yet assembled: installed, no file yet, the chunks' size
    assert rows["chunked"]["installed"] is True and rows["chunked"]["path"] is None
    assert rows["chunked"]["size"] == sum(map(len, chunks))
    assert rows["chunked"]["sha256"] is None  # hashed only under --verify
    result, rows = _listed("--verify")
    assert result.exit_code == 0, result.output
    assert rows["chunked"]["sha256"] == chunked.sha256 == rows["chunked"]["expected_sha256"]
    assert rows["whole"]["sha256"] == hashlib.sha256(b"GGUF whole").hexdigest()
    assembled = chunked.path()
    _, rows = _listed()
    assert rows["chunked"]["path"] == str(assembled)
    assert rows["chunked"]["size"] == assembled.stat().st_size == sum(map(len, chunks))
    human = cli("models", "--verify")
    assert "installed, sha256 ok" in human.stdout.splitlines()[1]
    # a damaged file: the listing says so and the command exits 1
    assembled.write_bytes(b"GGUF" + b"x" * 56)
    result, rows = _listed("--verify")
    assert result.exit_code == 1
    assert rows["chunked"]["sha256"] != rows["chunked"]["expected_sha256"]
    assert result.stderr.startswith(f"error: model chunked ({assembled}): sha256 ")
    assert f"delete {assembled} to assemble it again" in result.stderr


# -- times: wall_s to the millisecond, an ISO 8601 UTC time beside each epoch ---------


def _iso_agrees(row: dict[str, Any], key: str) -> None:
    from datetime import datetime, timedelta

    when = datetime.fromisoformat(row[f"{key}_iso"])
    assert when.utcoffset() == timedelta(0)
    assert abs(when.timestamp() - row[key]) < 0.001


def test_logged_times_have_iso_8601_utc_beside_them() -> None:
    run = asked()
    (listed,) = json.loads(cli("logs", "list", "--json").stdout)
    _iso_agrees(listed, "created_at")
    shown = json.loads(cli("logs", "show", run["run_id"], "--json").stdout)
    _iso_agrees(shown, "created_at")
    _iso_agrees(shown, "finished_at")
    assert shown["rounds"] and shown["calls"]
    for r in shown["rounds"]:
        _iso_agrees(r, "started_at")
    for c in shown["calls"]:
        _iso_agrees(c, "created_at")


def test_a_running_run_has_no_finish_time_in_either_form() -> None:
    from minsky.runlog import RunLog

    log = RunLog()
    log.start_run("01J0000000000000000000RUN1", "single", {}, "What is 1+1?", "auto", {})
    shown = log.get_run("01J0000000000000000000RUN1")
    assert shown["finished_at"] is None and shown["finished_at_iso"] is None
    _iso_agrees(shown, "created_at")


def test_eval_json_rounds_wall_s_as_every_other_json(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                         "answer": f"#### {2 * i}"}) + "\n" for i in range(3)))
    out = tmp_path / "r.jsonl"
    result = cli("eval", "--bench", str(bench), "-s", "single", "-m", "echo:", "-o", str(out),
                 "--json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["results"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for wall_s in [summary["wall_s"], *(r["wall_s"] for r in rows if "wall_s" in r)]:
        assert wall_s == round(wall_s, 3)


# -- --limit and --seed: one option, one wording, in every command that takes them ----


def _option(path: list[str], name: str) -> click.Option:
    command: click.Command = main
    for part in path:
        assert isinstance(command, click.Group)
        command = command.commands[part]
    (option,) = [p for p in command.params if name in getattr(p, "opts", [])]
    assert isinstance(option, click.Option)
    return option


@pytest.mark.parametrize(("path", "default"), [
    (["eval"], None), (["arena"], None), (["star", "mine"], None),
    (["toolformer", "annotate"], None), (["economy", "run"], 10)], ids=str)
def test_limit_is_the_same_option_everywhere(path: list[str], default: int | None) -> None:
    option = _option(path, "--limit")
    assert option.opts == ["--limit", "-n"] and option.name == "limit"
    assert isinstance(option.type, click.IntRange) and option.type.min == 1
    assert option.default == default and option.show_default == (default is not None)
    assert option.help is not None and option.help.startswith("number of ")
    if default is None:  # "all" is the default wherever a command can take them all
        assert "(default: all): the first N in file order" in option.help


@pytest.mark.parametrize(("path", "default"), [
    (["eval"], None), (["star", "mine"], None), (["economy", "run"], 0)], ids=str)
def test_seed_is_the_same_option_everywhere(path: list[str], default: int | None) -> None:
    option = _option(path, "--seed")
    assert isinstance(option.type, click.IntRange)
    assert (option.type.min, option.type.max) == (0, 2**32 - 1)
    assert option.default == default
    assert option.help is not None and option.help.startswith("sample the ")


def test_eval_takes_n_for_limit_and_first_is_unchanged(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                         "answer": f"#### {2 * i}"}) + "\n" for i in range(9)))

    def cases(*args: str) -> list[str]:
        out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.jsonl"
        result = cli("eval", "--bench", str(bench), "-s", "single", "-m", "echo:",
                     "-o", str(out), "--json", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["case"] for line in out.read_text().splitlines()
                if "case" in line]

    short, long = cases("-n", "4", "--seed", "3"), cases("--limit", "4", "--seed", "3")
    assert sorted(short) == sorted(long) and len(short) == 4
    # --first is still a prefix of the seeded sample
    assert sorted(cases("--limit", "4", "--seed", "3", "--first", "2")) == sorted(long)[:2]
