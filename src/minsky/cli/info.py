"""Commands that read: `societies`, `models`, `logs list|show`."""

from __future__ import annotations

import json
from typing import Any

import click

from minsky import render
from minsky.cli.core import emit, friendly, main
from minsky.models import MODELS, default_model
from minsky.runlog import RunLog
from minsky.safetext import printable_tree


@main.command("societies")
@click.option("--json", "as_json", is_flag=True)
@friendly
def list_societies(as_json: bool) -> None:
    """List the built-in societies (the default of `ask` is marked *)."""
    from minsky import society as societies

    rows: list[dict[str, Any]] = []
    for name in societies.builtin_names():
        soc = societies.load(name)
        rows.append({"name": name, "organisation": soc.config.organisation,
                     "members": len(soc.agents), "description": soc.config.description,
                     "default": name == societies.DEFAULT_SOCIETY})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["default"] else " "
        click.echo(f"{mark} {r['name']:<{width}}  {r['organisation']:<9} {r['members']:>2} "
                   f"member(s)  {r['description']}")


@main.command("models")
@friendly
def list_models() -> None:
    """List the models that ship as packages (the default is marked *)."""
    import importlib.util

    default = default_model()
    for m in MODELS.values():
        installed = importlib.util.find_spec(m.packages[0]) is not None
        mark = "*" if m.name == default else " "
        click.echo(f"{mark} {m.name:<14} {'installed' if installed else 'not installed':<14} "
                   f"{m.description}")


@main.group()
def logs() -> None:
    """Read the run log."""


@logs.command("list")
@click.option("-n", "limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def logs_list(limit: int, as_json: bool) -> None:
    """The latest runs, newest first."""
    runs = RunLog().list_runs(limit)
    if as_json:  # JSON escapes control characters itself, and keeps the text exact
        click.echo(json.dumps(runs, indent=2))
        return
    runs = printable_tree(runs)  # logged text may hold terminal escape codes
    for r in runs:
        q = " ".join(r["question"].split())[:60]
        click.echo(f"{r['id']}  {r['society']:<10} {r['status']:<11} "
                   f"answer={r['answer']!s:<8} {q}")


@logs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@friendly
def logs_show(run_id: str, as_json: bool) -> None:
    """One run, round by round: who was asked what, what each said, the decision."""
    run = RunLog().get_run(run_id)
    # a model's reply can hold terminal escape codes (set the title, clear the screen);
    # JSON escapes them itself, and keeps the text exact
    emit(run if as_json else printable_tree(run), as_json, render.run_transcript)
