"""Commands that measure: `eval`, `arena`, `contamination`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minsky.cli import render
from minsky.cli.checks import outputs, results_out, writable_file
from minsky.cli.core import (
    SEED,
    backend_options,
    concurrency_option,
    count,
    emit,
    exit_if_failed,
    friendly,
    limit_option,
    log_option,
    main,
    run_async,
    seed_option,
)
from minsky.cli.progress import Bar, errors_figure, progress_bar, say
from minsky.cluster.options import make_runner, ray_option
from minsky.errors import MinskyError
from minsky.models import default_model
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog

if TYPE_CHECKING:
    from minsky.evals.harness import Plan
    from minsky.plugin_api import Case
    from minsky.runner import Runner


@main.command("eval")
@click.option("--bench", required=True, help="a benchmark file or folder (format detected)")
@click.option("--society", "-s", "society_refs", multiple=True, required=True,
              help="a society to evaluate (repeat to compare; the first is the reference), "
                   "or a served model or proxy as a contestant: openai:URL#MODEL (asked as "
                   "single's member; e.g. openai:http://127.0.0.1:8000/v1#re2-qwen0.5b)")
@limit_option("cases", seeded=True)
@seed_option("--limit cases")
@click.option("--first", type=count(), default=None,
              help="only the first N cases of the sample (a staged run: --limit 100 --seed 0 "
                   "--first 20 is a prefix of the 100, which --limit 20 --seed 0 is not)")
@click.option("--map", "mapping", default=None,
              help="generic JSONL fields, e.g. question=q,answer=a,choices=opts")
@click.option("--matched", is_flag=True,
              help="also run vote with as many samples as each society made calls")
@click.option("--prefixes", default=None, metavar="K,K,…",
              help="also score each vote society's first K members (e.g. 1,3,5 of vote9)")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="results JSONL (default under $MINSKY_HOME/evals); reruns resume")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="PNG of accuracy against members/samples")
@click.option("--retry-errors/--no-retry-errors", default=True, show_default=True,
              help="run again the cases whose run failed in an earlier run of --out")
@concurrency_option
@backend_options
@ray_option
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def evaluate_cmd(bench: str, society_refs: tuple[str, ...], model: str | None,
                 limit: int | None, seed: int | None, first: int | None, mapping: str | None,
                 matched: bool,
                 prefixes: str | None, out: Path | None, plot: Path | None, retry_errors: bool,
                 concurrency: int, settings: BackendSettings, ray_address: str | None,
                 log_path: Path | None, as_json: bool) -> None:
    """Evaluate societies on a benchmark: accuracy with CIs, tokens, time, paired tests.

    A case whose run failed (a backend error, a timeout) is counted apart, never as a
    wrong answer; the command then exits 1, and a rerun retries those cases."""
    from minsky import society as societies
    from minsky.evals.benchmarks import load_benchmark
    from minsky.evals.harness import Plan, plot_levels, plot_scaling, read_rows
    from minsky.evals.harness import summarise as summarise_eval
    from minsky.results import FAILED

    cases = load_benchmark(bench, limit, seed, _field_map(mapping))[:first]
    case_ids = {c.id for c in cases}
    plan = Plan.of([societies.load(ref, model) for ref in society_refs],
                   _prefix_ks(prefixes), matched, model)
    out = out or _default_out(bench, len(cases), seed, model)
    outputs(out, plot)
    results_out(out)
    runner, concurrency = make_runner(settings, RunLog(log_path), ray_address, concurrency)

    async def measured() -> None:
        async with runner:
            await _run_plan(plan, runner, cases, out, concurrency, str(bench), retry_errors,
                            as_json)

    try:
        run_async(measured())
    except KeyboardInterrupt:
        saved = sum(1 for r in read_rows(out) if "case" in r and r.get("status") not in FAILED)
        say(f"interrupted: {saved} finished case(s) are in {out}; rerun the same command "
            "to resume")
        sys.exit(130)
    rows = [r for r in read_rows(out) if r.get("case") in case_ids]  # this run's cases only
    rows += plan.derived_rows(rows)
    entries = plan.entries
    summary = summarise_eval(rows, [e.name for e in entries], plan.pairs)
    summary.update({"bench": str(bench), "cases": len(cases), "out": str(out)})
    if plot:
        plot_scaling(summary["results"], {e.name: e.k for e in entries}, plot,
                     f"{Path(bench).parent.name}/{Path(bench).stem}: {len(cases)} cases",
                     plot_levels(plan.given))
        summary["plot"] = str(plot)
    emit(summary, as_json, render.eval_table)
    ran = {s.name for s in plan.runs}  # not the vote prefixes read off their rows
    by_society = ", ".join(f"{r['society']} {r['failed']}" for r in summary["results"]
                           if r["failed"] and r["society"] in ran)
    exit_if_failed(summary["failed"], "case(s)", f" ({by_society}) and are left out of "
                   "accuracy", retry_errors)


def _field_map(mapping: str | None) -> dict[str, str] | None:
    """`--map question=q,answer=a` as a dict (None without one)."""
    if not mapping:
        return None
    try:
        return dict(part.split("=", 1) for part in mapping.split(","))
    except ValueError:
        raise MinskyError(f"--map {mapping!r}: expected key=field pairs") from None


def _prefix_ks(prefixes: str | None) -> list[int]:
    """`--prefixes 1,3,5` as numbers."""
    try:
        return [int(k) for k in prefixes.split(",")] if prefixes else []
    except ValueError:
        raise MinskyError(f"--prefixes {prefixes!r}: expected numbers like 1,3,5") from None


def _default_out(bench: str, cases: int, seed: int | None, model: str | None) -> Path:
    """The results file of an evaluation given no --out. The benchmark's folder and the
    model are in the name: runs of another benchmark or model get a file of their own
    (results.py refuses to mix them anyway)."""
    from minsky.paths import home_dir

    where, stem = Path(bench).resolve().parent.name, Path(bench).stem
    tag = "".join(c if c.isalnum() or c in "._-" else "_" for c in model)[:40] if model else ""
    return home_dir() / "evals" / (f"{where}-{stem}-n{cases}-s{seed}"
                                   f"{'-' + tag if tag else ''}.jsonl")


async def _run_plan(plan: Plan, runner: Runner, cases: list[Case], out: Path,
                    concurrency: int, bench: str, retry_errors: bool, quiet: bool) -> None:
    """Run each society of `plan` in turn on `cases`, under one lock on the results file
    `out` for them all; as each finishes, its compute-matched vote is planned (with
    --matched), and a vote to sample is run next."""
    from minsky.evals.harness import evaluate_society
    from minsky.results import FAILED, open_results

    case_ids = {c.id for c in cases}
    with open_results(out) as results:
        at = 0
        while at < len(plan.runs):  # a matched vote may join the runs as they go
            soc = plan.runs[at]
            at += 1
            last = {r["case"]: r for r in results.rows  # of this run's cases only
                    if r.get("society") == soc.name and r.get("case") in case_ids}
            done = sum(1 for r in last.values()
                       if not retry_errors or r.get("status") not in FAILED)
            with progress_bar(soc.name, len(cases), done, hidden=quiet) as bar:
                await evaluate_society(runner, soc, cases, out, concurrency, _ticker(bar),
                                       bench, results, retry_errors)
            plan.match(soc, [r for r in results.rows if r.get("case") in case_ids])


def _ticker(bar: Bar) -> Callable[[dict[str, Any]], None]:
    """What a finished case does to `bar`: a step, with the accuracy so far and how many
    runs failed."""
    from minsky.results import FAILED

    seen = {"n": 0, "right": 0, "errors": 0}

    def tick(row: dict[str, Any]) -> None:
        if row.get("status") in FAILED:
            seen["errors"] += 1
        else:
            seen["n"] += 1
            seen["right"] += bool(row["correct"])
        acc = f"accuracy {seen['right'] / seen['n']:.0%}" if seen["n"] else ""
        bar.advance(" · ".join(p for p in (acc, errors_figure(seen["errors"])) if p))

    return tick


@main.command()
@click.option("--prompts", type=click.Path(path_type=Path), required=True,
              help="JSONL prompts: MT-Bench/Vicuna `turns` (first turn) or --field")
@click.option("--field", default="turns", show_default=True)
@click.option("--contestant", "contestants", multiple=True, required=True,
              help="a society (repeat: at least two)")
@click.option("--judge", default="single", show_default=True, help="the judging society")
@click.option("--judge-prompts", type=click.Path(path_type=Path), default=None,
              help="MT-Bench judge_prompts.jsonl (default: a built-in pair-v2 style prompt)")
@click.option("--judge-prompt-name", default="pair-v2", show_default=True)
@click.option("--constitution", type=click.Path(path_type=Path), default=None,
              help="a text file of principles the judge is told to judge by")
@limit_option("prompts")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None)
@click.option("--plot", type=click.Path(path_type=Path), default=None)
@click.option("--export-pairs", type=click.Path(path_type=Path), default=None,
              help="also write the verdicts as DPO pairs (JSONL: prompt, chosen, rejected)")
@concurrency_option
@backend_options
@ray_option
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def arena(prompts: Path, field: str, contestants: tuple[str, ...], judge: str,
          judge_prompts: Path | None, judge_prompt_name: str, constitution: Path | None,
          model: str | None, limit: int | None, out: Path | None, plot: Path | None,
          export_pairs: Path | None, concurrency: int, settings: BackendSettings,
          ray_address: str | None, log_path: Path | None, as_json: bool) -> None:
    """Pairwise judging in both orders; Bradley–Terry and Elo ratings with CIs.

    A contestant's or judge's run that failed is no game (not a loss, not a tie): the
    command counts it apart and exits 1, and a rerun retries it."""
    from minsky import society as societies
    from minsky.evals.arena import (
        arena_done,
        judge_template,
        leaderboard,
        plot_leaderboard,
        preference_pairs,
        read_prompts,
        run_arena,
    )
    from minsky.inputs.records import jsonl_rows
    from minsky.paths import home_dir

    items = read_prompts(prompts, field)[:limit]
    socs = [societies.load(ref, model) for ref in contestants]
    judge_soc = societies.load(judge, model)
    template = judge_template(judge_prompts, judge_prompt_name)
    if constitution and not constitution.is_file():
        raise MinskyError(f"constitution {constitution} does not exist")
    rules = constitution.read_text(encoding="utf-8") if constitution else None
    out = out or home_dir() / "arenas" / f"{prompts.stem}-{len(items)}.jsonl"
    outputs(out, plot)
    results_out(out)
    writable_file(export_pairs, "--export-pairs")
    runner, concurrency = make_runner(settings, RunLog(log_path), ray_address, concurrency)
    # every answer and every judgment in both orders is one step; a failed answer's games
    # are never played, so its bar stops short (and the command then exits 1)
    n = len(socs)
    total = len(items) * (n + n * (n - 1))
    done = min(arena_done(jsonl_rows(out)), total) if out.is_file() else 0

    async def go(bar: Bar) -> None:
        def said(msg: str) -> None:
            bar.advance()
            if not as_json:
                bar.say(msg)

        async with runner:
            await run_arena(runner, items, socs, judge_soc, template, out, rules,
                            concurrency, said)

    with progress_bar("arena", total, done, hidden=as_json) as bar:
        run_async(go(bar))
    board = leaderboard(jsonl_rows(out))
    board.update({"prompts": len(items), "judge": judge_soc.name, "out": str(out)})
    if export_pairs:
        from minsky.star.rows import write_rows

        pairs = preference_pairs(jsonl_rows(out), dict(items))
        write_rows(export_pairs, pairs)
        board.update({"pairs_out": str(export_pairs), "pairs_written": len(pairs)})
    if plot:
        plot_leaderboard(board["leaderboard"], plot, f"{prompts.stem}: {len(items)} prompts")
        board["plot"] = str(plot)
    emit(board, as_json, render.arena_board)
    failed = board["failed"]
    parts = [f"{name}'s answers {n}" for name, n in failed["answers"].items()]
    parts += [f"judgments {failed['judgments']}"] if failed["judgments"] else []
    exit_if_failed(failed["total"], "run(s)", f" ({', '.join(parts)}) and are left out of "
                   "the games")


@main.command()
@click.option("--bench", type=click.Path(path_type=Path), required=True,
              help="a benchmark file (JSONL or text, examples in canonical order)")
@click.option("--shards", type=count(2, 10_000), default=5, show_default=True)
@click.option("--per-shard", type=count(2, 100_000), default=8, show_default=True,
              help="examples per shard")
@click.option("--permutations", type=count(1, 100_000), default=10, show_default=True,
              help="random orders per shard")
@click.option("--seed", type=SEED, default=0, show_default=True)
@backend_options
@log_option
@click.option("--no-log", is_flag=True, help="do not write the scoring run to the run log")
@click.option("--json", "as_json", is_flag=True)
@friendly
def contamination(bench: Path, model: str | None, shards: int, per_shard: int,
                  permutations: int, seed: int, settings: BackendSettings,
                  log_path: Path | None, no_log: bool, as_json: bool) -> None:
    """Was BENCH in the model's training data? The permutation test of Oren et al. (2023)."""
    if no_log and log_path:
        raise MinskyError("--log and --no-log: expected one of them")
    from minsky.backends.base import scoring
    from minsky.backends.registry import Backends
    from minsky.evals.contamination import contamination_test, examples_of, run_loglik
    from minsky.runner import Runner

    examples = examples_of(bench)
    spec = model or default_model()
    backend = Backends(settings).get(spec)
    scoring(backend)  # one that cannot score is refused before any work
    # the scores go through the runner: logged as a run, with their token counts
    runner = Runner(Backends(settings, {spec: backend}), None if no_log else RunLog(log_path))
    question = (f"{bench}: {shards} shards of {per_shard} examples, {permutations} "
                f"permutations, seed {seed}")

    async def go(bar: Bar) -> dict[str, Any]:
        try:
            async with runner.direct(spec, "contamination", question=question) as run:
                return await contamination_test(run_loglik(run), examples, shards, per_shard,
                                                permutations, seed, on_shard=bar.advance)
        finally:
            await backend.aclose()

    with progress_bar("shards", shards, hidden=as_json) as bar:
        result = run_async(go(bar))
    result.update({"bench": str(bench), "model": backend.describe()})
    emit(result, as_json, render.contamination_result)
