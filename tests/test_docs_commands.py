"""Every `minsky …` command that docs/benchmarks.md and the README cite still parses.

Parsing only — the option names and values are checked by click, nothing runs — so a
renamed option or a retired command in the docs fails here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from minsky.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cited(doc: Path) -> list[str]:
    """The `minsky` commands in a Markdown file's indented code blocks (continuations
    joined)."""
    text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if re.match(r"^ {4}(\S+=\S+ )*minsky ", line) and "…" not in line]


COMMANDS = [c for doc in ("docs/benchmarks.md", "README.md", "docs/scaling.md")
            for c in cited(ROOT / doc)]


def test_the_docs_cite_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.filterwarnings("ignore:'protected_args' is deprecated")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_cited_command_parses(command: str) -> None:
    args = shlex.split(command)
    args = args[args.index("minsky") + 1:]
    for shell in (">", "|", "2>", "&"):  # redirections and &: the shell's, not the command's
        args = args[:args.index(shell)] if shell in args else args
    ctx = main.make_context("minsky", list(args))
    group: click.Group = main
    while True:
        name, cmd, rest = group.resolve_command(ctx, ctx.protected_args + ctx.args)
        assert cmd is not None, command
        ctx = cmd.make_context(name, rest, parent=ctx)
        if not isinstance(cmd, click.Group):
            break
        group = cmd
