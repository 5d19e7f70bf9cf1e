"""One CLI style: the same backend options everywhere, a bad value is one line and exit 2
(issue 16 outcome 4, issue 17 item 7), `--json` on every listing, `minsky plugins`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from minsky.cli import main
from minsky.plugin_api import BackendSettings

MODEL_COMMANDS = {
    "ask": ["ask", "What is 2+3?", "-m", "echo:"],
    "batch": ["batch", "{questions}", "-m", "echo:"],
    "eval": ["eval", "--bench", "{bench}", "-s", "single", "-m", "echo:"],
    "arena": ["arena", "--prompts", "{prompts}", "--contestant", "single",
              "--contestant", "vote3", "-m", "echo:"],
    "economy run": ["economy", "run", "-s", "vote3", "--bench", "{bench}", "-m", "echo:"],
    "contamination": ["contamination", "--bench", "{questions}", "-m", "echo:"],
    "toolformer annotate": ["toolformer", "annotate", "--corpus", "{questions}",
                            "--out", "{out}"],
}
CONCURRENT = ("batch", "eval", "arena")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "1", "question": "What is 2+3?"}\n')
    bench = tmp_path / "b.jsonl"
    bench.write_text('{"question": "What is 1 + 1?", "answer": "#### 2"}\n')
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"question_id": 1, "turns": ["Say hi."]}\n')
    return {"questions": str(q), "bench": str(bench), "prompts": str(prompts),
            "out": str(tmp_path / "out.jsonl")}


def invoke(name: str, files: dict[str, str], *extra: str) -> Result:
    args = [a.format(**files) for a in MODEL_COMMANDS[name]]
    return CliRunner().invoke(main, [*args, *extra])


def one_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_every_model_command_takes_the_same_backend_options(name: str) -> None:
    command = main
    for part in name.split():
        command = command.commands[part]  # type: ignore[attr-defined]
    options = {o.name: o for o in command.params}
    defaults = BackendSettings()
    assert options["threads"].default is None
    assert options["parallel"].default == defaults.parallel == 16
    assert options["n_ctx"].default == defaults.n_ctx
    assert {o.opts[0] for o in command.params if o.name in ("parallel", "n_ctx")} == {
        "--parallel", "--ctx"}


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
@pytest.mark.parametrize(("option", "value"), [("--parallel", "0"), ("--parallel", "x"),
                                               ("--ctx", "10"), ("--threads", "0")])
def test_a_bad_backend_option_is_one_line_naming_it(name: str, option: str, value: str,
                                                    files: dict[str, str]) -> None:
    one_line(invoke(name, files, option, value), f"option {option}")


@pytest.mark.parametrize("name", CONCURRENT)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_concurrency_below_one_is_refused_not_hung(name: str, value: str,
                                                   files: dict[str, str]) -> None:
    one_line(invoke(name, files, "--concurrency", value), "option --concurrency")


@pytest.mark.parametrize(("name", "option", "value"), [
    ("eval", "--limit", "0"), ("arena", "--limit", "-1"), ("economy run", "--limit", "0"),
    ("economy run", "--generations", "0"), ("contamination", "--shards", "1"),
    ("toolformer annotate", "--k", "0"), ("toolformer annotate", "--tau-s", "2"),
    ("ask", "--answer", "essay"), ("eval", "--no-such-option", "1"),
])
def test_other_bad_values_are_one_line_too(name: str, option: str, value: str,
                                           files: dict[str, str]) -> None:
    one_line(invoke(name, files, option, value), option)


@pytest.mark.parametrize("args", [["logs", "list", "-n", "0"], ["logs", "lst"],
                                  ["societies", "--jsn"]])
def test_reading_commands_too(args: list[str]) -> None:
    one_line(CliRunner().invoke(main, args))


@pytest.mark.parametrize("listing", [["societies"], ["models"], ["plugins"],
                                     ["logs", "list"]])
def test_every_listing_has_json(listing: list[str]) -> None:
    result = CliRunner().invoke(main, [*listing, "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list)


def test_plugins_lists_every_kind_with_the_plugin_that_registered_it() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    rows = json.loads(result.stdout)
    by_kind: dict[str, set[str]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], set()).add(r["name"])
        assert r["plugin"] == "builtin"
    assert {"vote", "consensus", "prompt"} <= by_kind["organisation"]
    assert {"Calculator", "Search", "Ask"} <= by_kind["tool"]
    assert by_kind["backend"] == {"llama", "openai", "echo"}
    assert {"gsm8k", "arc", "mmlu"} <= by_kind["benchmark format"]
    text = CliRunner().invoke(main, ["plugins"])
    assert text.exit_code == 0
    assert ["organisation", "consensus", "builtin"] in [
        line.split()[:3] for line in text.stdout.splitlines()]


def test_models_json_marks_the_default() -> None:
    rows = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    assert [r["name"] for r in rows if r["default"]] == ["qwen0.5b"]
    assert {"name", "installed", "default", "description"} <= set(rows[0])


@pytest.mark.parametrize("args", [[], ["logs"], ["economy"]])
def test_a_bare_group_still_shows_its_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert "Commands:" in result.output and "error: Usage" not in result.output


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command under `group` that has a required parameter."""
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        elif any(p.required for p in command.params):
            found.append((*path, name))
    return found


REQUIRED = _commands(main)


def test_the_walk_finds_the_commands_with_required_parameters() -> None:
    assert {("eval",), ("batch",), ("arena",), ("contamination",)} <= set(REQUIRED)


@pytest.mark.parametrize("path", REQUIRED, ids=" ".join)
def test_a_missing_required_parameter_says_what_is_missing(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, list(path))
    one_line(result, "Missing ")
    reason = result.stderr.strip().removeprefix("error: ")
    assert reason.split(maxsplit=2)[2:], reason  # "Missing option '--bench'." has a name


# -- one declaration of each shared option (issue 30) ----------------------------------


def _every_command(group: click.Group, path: tuple[str, ...] = ()
                   ) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _every_command(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_every_command_that_takes_a_model_takes_the_same_option() -> None:
    from minsky.cli.core import MODEL_HELP

    models = {" ".join(path): option for path, command in _every_command(main)
              for option in command.params if option.name == "model"}
    assert set(models) == {*MODEL_COMMANDS, "serve", "star mine"}
    assert {(tuple(o.opts), o.default, getattr(o, "help", None)) for o in models.values()
            } == {(("--model", "-m"), None, MODEL_HELP)}
    assert "openai:URL#MODEL" in MODEL_HELP and "echo:" in MODEL_HELP


def test_serve_takes_the_backend_options_every_model_command_takes() -> None:
    def backend(command: click.Command) -> list[tuple[Any, ...]]:
        return [(o.name, tuple(o.opts), o.default, getattr(o, "help", None))
                for o in command.params
                if o.name in ("model", "threads", "parallel", "n_ctx", "otel")]

    serve, ask = main.commands["serve"], main.commands["ask"]
    assert len(backend(serve)) == 5 and backend(serve) == backend(ask)


def test_no_function_in_the_cli_is_over_80_lines() -> None:
    import ast

    import minsky.cli

    long = []
    for path in Path(minsky.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.name}: {node.name} ({lines} lines)")
    assert not long
