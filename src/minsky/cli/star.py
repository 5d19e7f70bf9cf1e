"""`minsky star`: the society teaches its member (mine, export, train, run)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from minsky.cli import progress, render
from minsky.cli.checks import outputs
from minsky.cli.core import (
    MAX_CTX,
    MAX_WORKERS,
    SEED,
    Finite,
    backend_options,
    concurrency_option,
    count,
    emit,
    friendly,
    limit_option,
    log_option,
    main,
    run_async,
    seed_option,
)
from minsky.cluster.options import make_runner
from minsky.errors import MinskyError
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog


@main.group()
def star() -> None:
    """STaR: mine the society's right answers, train the member on them, repeat."""


def _exclusion(bench: Path, exclude: Path | None) -> Any:
    from minsky.star.mine import read_exclusion, reporting_exclusion

    excluded = reporting_exclusion(bench)
    if exclude is not None:
        excluded.update(read_exclusion(exclude))
    return excluded


@star.command("mine")
@click.option("--bench", type=click.Path(path_type=Path), required=True,
              help="the benchmark whose gold answers check the replies")
@click.option("--society", "-s", "society_ref", default="consensus", show_default=True,
              help="the society to run (fresh mining)")
@limit_option("cases", seeded=True)
@seed_option("--limit cases")
@click.option("--from-log", "from_log", is_flag=True,
              help="no new compute: mine every logged run whose question is a case")
@click.option("--log", "log_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="the run log to read (--from-log, --from-results) or to "
              "write (fresh mining); default $MINSKY_HOME/logs.db")
@click.option("--from-results", "from_results", type=click.Path(path_type=Path),
              multiple=True, help="no new compute: mine the runs (or sample pools) a results "
              "file names (repeatable)")
@click.option("--exclude", type=click.Path(path_type=Path), default=None,
              help="more case ids never to mine (the seed-0 reporting sample always is)")
@click.option("--rationalize/--no-rationalize", default=True, show_default=True,
              help="ask unsolved problems again with the answer as a hint")
@click.option("--round", "round_no", type=count(0, 1000), default=0, show_default=True,
              help="the STaR round recorded in each row")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="mined JSONL; new distinct rows are appended")
@concurrency_option
@backend_options
@click.option("--json", "as_json", is_flag=True)
@friendly
def mine_cmd(bench: Path, society_ref: str, model: str | None, limit: int | None,
             seed: int | None, from_log: bool, log_file: Path | None,
             from_results: tuple[Path, ...], exclude: Path | None, rationalize: bool,
             round_no: int, out: Path, concurrency: int, settings: BackendSettings,
             as_json: bool) -> None:
    """Keep every member reply whose answer matches the gold one (programs run by minsky's
    interpreter, chains of thought by their final answer)."""
    from minsky import society as societies
    from minsky.evals.benchmarks import load_benchmark
    from minsky.star.fresh import mine_fresh
    from minsky.star.mine import (
        append_mined,
        cases_by_question,
        collect,
        log_replies,
        read_mined,
        results_replies,
    )

    outputs(out)
    excluded = _exclusion(bench, exclude)
    existing = read_mined(out)
    label = str(bench)
    if from_log or from_results:
        log = RunLog.read_only(log_file) if log_file else RunLog()
        by_question = cases_by_question(load_benchmark(bench))
        found: list[Any] = []
        stats: dict[str, Any] = {}
        if from_log:
            rows, st = collect(log_replies(log, by_question), excluded, round_no, existing,
                               label)
            found += rows
            stats["log"] = st.to_dict()
        for path in from_results:
            rows, st = collect(results_replies(path, by_question, log), excluded, round_no,
                               [*existing, *found], label)
            found += rows
            stats[str(path)] = st.to_dict()
        append_mined(out, found)
        summary = {"out": str(out), "new_rows": len(found),
                   "kept": sum(r.correct for r in found), "sources": stats}
        emit(summary, as_json, render.mapping_table)
        return
    cases = load_benchmark(bench, limit, seed)
    soc = societies.load(society_ref, model)
    log = RunLog(log_file)
    runner, concurrency = make_runner(settings, log, None, concurrency)

    async def go() -> Any:
        async with runner:
            return await mine_fresh(runner, log, soc, cases, out, excluded,
                                    round_no=round_no, rationalize=rationalize, model=model,
                                    existing=existing, concurrency=concurrency, bench=label)

    try:
        mined = run_async(go())
    except KeyboardInterrupt:
        progress.say(f"interrupted: finished runs are in {out}.results.jsonl; rerun the same "
                     "command to resume")
        sys.exit(130)
    append_mined(out, mined.rows)
    summary = {"out": str(out), "new_rows": len(mined.rows), **mined.stats.to_dict()}
    if mined.hint_stats is not None:
        summary["hinted_kept"] = mined.hint_stats.kept
    emit(summary, as_json, render.mapping_table)


@star.command("export")
@click.argument("mined", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["sft", "dpo"]), default="sft",
              show_default=True)
@click.option("--kind", type=click.Choice(["program", "cot", "all"]), default="all",
              show_default=True, help="which rationales")
@click.option("--per-case", type=count(0, 1000), default=4, show_default=True,
              help="at most this many rows per problem and kind (0: all)")
@click.option("--exclude", type=click.Path(path_type=Path), default=None,
              help="more case ids to drop (each bench's seed-0 reporting sample always is)")
@click.option("--zero-shot", is_flag=True,
              help="only replies asked without worked examples (trained under the same prompt)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def export_cmd(mined: Path, fmt: str, kind: Any, per_case: int, exclude: Path | None,
               zero_shot: bool, seed: int, out: Path, as_json: bool) -> None:
    """Training rows from a mined file: SFT chat messages or DPO pairs."""
    from minsky.star.export import dpo_rows, sft_rows
    from minsky.star.mine import Exclusion, read_exclusion, read_mined, reporting_exclusion
    from minsky.star.rows import write_rows

    outputs(out)
    rows = read_mined(mined)
    if not rows:
        raise MinskyError(f"mined file {mined} does not exist or has no rows")
    excluded = read_exclusion(exclude) if exclude else Exclusion()
    for bench in sorted({r.bench for r in rows if r.bench}):
        if Path(bench).exists():
            excluded.update(reporting_exclusion(Path(bench)))
        else:
            progress.say(f"warning: benchmark {bench} is not here; its reporting problems "
                         "are dropped by the ids --exclude gives only")
    made = (sft_rows(rows, excluded, kind, per_case, seed, zero_shot) if fmt == "sft"
            else dpo_rows(rows, excluded, kind, per_case, seed, zero_shot))
    write_rows(out, made)
    dropped = sum(1 for r in rows if (r.case, r.question) in excluded)
    emit({"out": str(out), "format": fmt, "rows": len(made), "dropped_reporting": dropped,
          "problems": len({r["case"] for r in made})}, as_json, render.mapping_table)


@star.command("prefs")
@log_option
@click.option("--run", "run_ids", multiple=True,
              help="only this run (repeat; default: every run of the log that finished ok)")
@click.option("--source", type=click.Choice(["judgement", "revision", "all"]), default="all",
              show_default=True, help="pairwise judgements won in both orders, revisions "
              "asked by a critic, or both")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def prefs_cmd(log_path: Path | None, run_ids: tuple[str, ...], source: str, out: Path,
              as_json: bool) -> None:
    """DPO rows (prompt, chosen, rejected) from the text societies' judgements and
    revisions in the run log (RLAIF), in the shape of `star export --format dpo`."""
    from minsky.star.prefs import SOURCES, preference_rows
    from minsky.star.rows import write_rows

    outputs(out)
    log = RunLog.reader(log_path)
    rows = preference_rows(log, run_ids or None,
                           SOURCES if source == "all" else (source,))
    write_rows(out, rows)
    emit({"out": str(out), "rows": len(rows),
          "judgement": sum(r["source"] == "judgement" for r in rows),
          "revision": sum(r["source"] == "revision" for r in rows),
          "runs": len({r["run_id"] for r in rows})}, as_json, render.mapping_table)


@star.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="the GGUF LoRA adapter to write")
@click.option("--base", default="qwen0.5b", show_default=True, help="the model to adapt")
@click.option("--rank", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--alpha", type=Finite(min=0, min_open=True), default=32.0,
              show_default=True)
@click.option("--epochs", type=Finite(min=0, min_open=True), default=1.0,
              show_default=True)
@click.option("--lr", type=Finite(min=0, min_open=True), default=2e-4,
              show_default=True)
@click.option("--batch", type=count(1, MAX_WORKERS), default=2, show_default=True)
@click.option("--max-len", type=count(16, MAX_CTX), default=512, show_default=True)
@click.option("--max-minutes", type=Finite(min=0, min_open=True), default=None,
              help="stop on a saved checkpoint after this long (the adapter is still written)")
@click.option("--max-steps", type=count(), default=None)
@click.option("--layers-from", type=count(0, 1000), default=0, show_default=True,
              help="adapt only the layers from this one up (faster: backward stops there)")
@click.option("--threads", type=count(1, MAX_WORKERS), default=None,
              help="CPU threads (default: all cores; 1 is faster while a model runs beside)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def train_cmd(data: Path, out: Path, base: str, rank: int, alpha: float, epochs: float,
              lr: float, batch: int, max_len: int, max_minutes: float | None,
              max_steps: int | None, layers_from: int, threads: int | None, seed: int,
              as_json: bool) -> None:
    """Fine-tune a LoRA adapter on SFT rows (needs `pip install 'minsky[train]'`);
    checkpoints resume after Ctrl-C or a kill."""
    from minsky.star.train import train_adapter

    outputs(out)
    report = train_adapter(data, out, base=base, rank=rank, alpha=alpha, epochs=epochs,
                           lr=lr, batch=batch, max_len=max_len, max_minutes=max_minutes,
                           max_steps=max_steps, layers_from=layers_from, threads=threads,
                           seed=seed, progress=not as_json)
    emit(report.to_dict(), as_json, render.mapping_table)


@star.command("run")
@click.option("--bench", type=click.Path(path_type=Path), required=True)
@click.option("--rounds", type=click.IntRange(1, 20), default=2, show_default=True)
@click.option("--society", "-s", "society_ref", default="consensus", show_default=True,
              help="the society that mines")
@click.option("--base", default="qwen0.5b", show_default=True, help="the member to train")
@click.option("--limit", type=count(), default=200, show_default=True,
              help="problems mined each round")
@click.option("--held-back", type=count(), default=100, show_default=True,
              help="problems kept apart to measure each round's member")
@click.option("--seed", type=SEED, default=1, show_default=True)
@click.option("--exclude", type=click.Path(path_type=Path), default=None)
@click.option("--rationalize/--no-rationalize", default=True, show_default=True)
@click.option("--per-case", type=count(0, 1000), default=4, show_default=True)
@click.option("--max-minutes", type=Finite(min=0, min_open=True), default=None,
              help="training time budget per round")
@click.option("--epochs", type=Finite(min=0, min_open=True), default=1.0,
              show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="a folder for every round's files; rerunning resumes")
@concurrency_option
@backend_options(model=False)
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def run_cmd(bench: Path, rounds: int, society_ref: str, base: str, limit: int,
            held_back: int, seed: int, exclude: Path | None, rationalize: bool,
            per_case: int, max_minutes: float | None, epochs: float, out: Path,
            concurrency: int, settings: BackendSettings, log_path: Path | None,
            as_json: bool) -> None:
    """STaR rounds: mine with the current member, train from the base on the union of
    kept rationales, measure on a held-back slice; a table per round."""
    from dataclasses import asdict

    from minsky.evals.benchmarks import load_benchmark
    from minsky.star.rounds import RoundPlan, run_rounds

    excluded = _exclusion(bench, exclude)
    pool = [c for c in load_benchmark(bench) if (c.id, c.question) not in excluded]
    if len(pool) < limit + held_back:
        raise MinskyError(f"--limit {limit} + --held-back {held_back}: {bench} has only "
                          f"{len(pool)} problems outside the reporting sample")
    import random

    picked = random.Random(seed).sample(range(len(pool)), limit + held_back)
    heldout = [pool[i] for i in sorted(picked[:held_back])]
    mine = [pool[i] for i in sorted(picked[held_back:])]
    plan = RoundPlan(str(bench), society_ref, base, rounds, mine, heldout, excluded,
                     rationalize, per_case,
                     {"max_minutes": max_minutes, "epochs": epochs, "progress": not as_json})

    def make() -> Any:
        return make_runner(settings, RunLog(log_path), None, concurrency)

    say = (lambda _: None) if as_json else progress.say
    try:
        reports = run_async(run_rounds(plan, out, make, say))
    except KeyboardInterrupt:
        progress.say(f"interrupted: rerun the same command to resume from {out}")
        sys.exit(130)
    emit([asdict(r) for r in reports], as_json, render.star_rounds)
