"""Commands that run societies: `ask` one question, `batch` many."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from minsky.cli import progress, render
from minsky.cli.checks import outputs, results_out
from minsky.cli.core import (
    backend_options,
    concurrency_option,
    emit,
    exit_if_failed,
    friendly,
    log_option,
    main,
    run_async,
)
from minsky.cli.progress import errors_figure, progress_bar
from minsky.cluster.options import make_runner, ray_option
from minsky.errors import MinskyError
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog
from minsky.society import DEFAULT_SOCIETY


@main.command()
@click.argument("question", required=False)
@click.option("--society", "-s", default=DEFAULT_SOCIETY, show_default=True,
              help="a built-in society name or a society TOML file")
@click.option("--answer", "kind", type=click.Choice(["auto", "number", "choice", "text"]),
              default=None, help="kind of answer to extract (default: the society's, auto)")
@backend_options
@click.option("--resume", default=None, help="continue an interrupted run from the log")
@log_option
@click.option("--no-log", is_flag=True, help="do not write this run to the run log")
@click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object")
@friendly
def ask(question: str | None, society: str, model: str | None, kind: str | None,
        settings: BackendSettings, resume: str | None, log_path: Path | None, no_log: bool,
        as_json: bool) -> None:
    """Ask a society QUESTION and print its answer, who said what, tokens and time."""
    from minsky import society as societies
    from minsky.backends.registry import Backends
    from minsky.runner import Runner

    if no_log and log_path:
        raise MinskyError("--log and --no-log: expected one of them")
    log = None if no_log else RunLog(log_path)
    if resume:
        if log is None:
            raise MinskyError("--resume reads the run log; drop --no-log")
        old = log.get_run(resume)
        question = question or old["question"]
        # a run made with --model used one model for every agent: keep it on resume
        models = list(old["models"] or {})
        if model is None and len(models) == 1 and not models[0].startswith("society:"):
            model = models[0]
        # the society file's own path, where the log has it: the societies it nests are
        # named relative to it, not to the folder this resume runs in
        soc = societies.from_dict(old["society_config"], old.get("source") or f"run {resume}",
                                  model)
        kind = kind or old["kind"]
    else:
        if not question:
            raise MinskyError("ask needs a QUESTION (or --resume RUN_ID)")
        soc = societies.load(society, model)
    runner = Runner(Backends(settings), log)
    say = progress.say if not as_json else None
    if say:
        say(f"society {soc.name} · {len(soc.agents)} member(s) · models "
            f"{', '.join(sorted({a.model for a in soc.agents}))}")

    async def go() -> Any:
        async with runner:
            return await runner.run(soc, question, soc.answer_kind(question, kind),
                                    resume=resume, progress=say)

    try:
        result = run_async(go())
    except KeyboardInterrupt:
        progress.say("interrupted; what finished is in the run log (minsky logs list)")
        sys.exit(130)
    emit(result.to_dict(), as_json, render.run_summary)
    if result.status not in ("ok",):
        sys.exit(1)


@main.command()
@click.argument("questions", type=click.Path(path_type=Path))
@click.option("--society", "-s", default=DEFAULT_SOCIETY, show_default=True)
@click.option("--field", default="question", show_default=True,
              help="the question's key in a JSONL file")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="results JSONL (default: QUESTIONS.SOCIETY.results.jsonl); reruns resume")
@concurrency_option
@click.option("--answer", "kind", type=click.Choice(["auto", "number", "choice", "text"]),
              default=None)
@backend_options
@ray_option
@log_option
@click.option("--json", "as_json", is_flag=True,
              help="print the summary as one JSON object (questions, answered_now, failed, "
                   "out)")
@friendly
def batch(questions: Path, society: str, model: str | None, field: str, out: Path | None,
          concurrency: int, kind: str | None, settings: BackendSettings,
          ray_address: str | None, log_path: Path | None, as_json: bool) -> None:
    """Run a society on every question of a JSONL or text file, several at once; each
    question's row (answer, status, wall_s, run_id) goes to --out.

    A question whose run failed (a backend error, a timeout) is not answered: the command
    counts it apart and exits 1, and a rerun retries it."""
    from minsky import society as societies
    from minsky.cli.batch import finished_ids, read_questions, run_batch
    from minsky.results import FAILED

    items = read_questions(questions, field)
    soc = societies.load(society, model)
    out = out or questions.with_name(f"{questions.stem}.{soc.name}.results.jsonl")
    outputs(out)
    results_out(out)
    runner, concurrency = make_runner(settings, RunLog(log_path), ray_address, concurrency)
    if not as_json:  # under --json, as for eval and arena, stderr has only errors
        progress.say(f"{len(items)} question(s) · society {soc.name} · results → {out}")
    done = len(finished_ids(out, soc.name) & {qid for qid, _ in items})
    failed_now = [0]

    with progress_bar(soc.name, len(items), done, hidden=as_json) as bar:
        def show(row: dict[str, Any]) -> None:
            answer = render.shown_answer(row["answer"], row["status"], row.get("error"))
            failed_now[0] += row["status"] in FAILED
            if not as_json:
                bar.say(f"{row['id']}: {answer} ({row['status']}, {row['wall_s']} s)")
            bar.advance(errors_figure(failed_now[0]))

        async def go() -> list[dict[str, Any]]:
            async with runner:
                return await run_batch(runner, soc, items, out, concurrency, kind, show)

        rows = run_async(go())
    failed = sum(1 for r in rows if r["status"] in FAILED)
    emit({"questions": len(items), "answered_now": len(rows) - failed, "failed": failed,
          "out": str(out)}, as_json, render.batch_summary)
    exit_if_failed(failed, f"of {len(items)} question(s)", f" (their rows in {out} say why)")
