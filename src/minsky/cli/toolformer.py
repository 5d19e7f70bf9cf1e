"""`minsky toolformer`: self-supervised tool-call annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from minsky.cli import render
from minsky.cli.core import (
    MAX_WORKERS,
    Finite,
    backend_options,
    count,
    emit,
    friendly,
    limit_option,
    log_option,
    main,
    run_async,
)
from minsky.cli.progress import Bar, progress_bar
from minsky.errors import MinskyError
from minsky.models import default_model
from minsky.plugin_api import BackendSettings


@main.group()
def toolformer() -> None:
    """Toolformer: self-supervised tool-call annotation."""


@toolformer.command("annotate")
@click.option("--corpus", type=click.Path(path_type=Path), required=True,
              help="JSONL (see --field) or text file, one text a line")
@click.option("--field", default="text", show_default=True)
@click.option("--tool", "tool_name", default="Calculator", show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="augmented corpus, JSONL; reruns resume")
@limit_option("texts")
@click.option("--tau-s", type=Finite(0, 1), default=0.05, show_default=True)
@click.option("--k", type=count(1, MAX_WORKERS), default=5, show_default=True)
@click.option("--m", "m", type=count(1, MAX_WORKERS), default=5, show_default=True)
@click.option("--tau-f", type=Finite(), default=1.0, show_default=True)
@backend_options
@log_option
@click.option("--json", "as_json", is_flag=True,
              help="print the summary as one JSON object (texts, calls_kept, …, out)")
@friendly
def toolformer_annotate(corpus: Path, field: str, tool_name: str, model: str | None,
                        out: Path, limit: int | None, tau_s: float, k: int, m: int,
                        tau_f: float, settings: BackendSettings, log_path: Path | None,
                        as_json: bool) -> None:
    """Find where calls to a tool help the model predict a text, and keep those calls."""
    from minsky.backends.base import text_scoring
    from minsky.backends.registry import Backends
    from minsky.inputs.records import jsonl_rows
    from minsky.plugin_api import NoOptions, ToolContext
    from minsky.plugins import tool_types
    from minsky.runlog import RunLog
    from minsky.tools.toolformer import AnnotateConfig, annotate_corpus, read_corpus

    types = tool_types()
    if tool_name not in types or types[tool_name].options is not NoOptions:
        usable = sorted(n for n, t in types.items() if t.options is NoOptions)
        raise MinskyError(f"--tool {tool_name!r}: expected one of {usable}")
    tool = types[tool_name].create(NoOptions(), ToolContext(None, Path.cwd()))
    cfg = AnnotateConfig(tau_s=tau_s, k=k, m=m, tau_f=tau_f)
    texts = read_corpus(corpus, field)[:limit]
    backend = Backends(settings).get(model or default_model())
    text_scoring(backend)  # one that cannot score is refused before any work
    log = RunLog(log_path)
    # texts a rerun skips (annotate_corpus resumes from `out` by index)
    done = len({row["index"] for row in jsonl_rows(out)} & set(range(len(texts))))

    async def go(bar: Bar) -> dict[str, Any]:
        def said(msg: str) -> None:
            bar.advance()
            if not as_json:
                bar.say(msg)

        try:
            return await annotate_corpus(texts, tool, backend, cfg, out, said, log)
        finally:
            await backend.aclose()

    with progress_bar("texts", len(texts), done, hidden=as_json) as bar:
        summary = run_async(go(bar))
    summary["out"] = str(out)
    emit(summary, as_json, render.mapping_table)
