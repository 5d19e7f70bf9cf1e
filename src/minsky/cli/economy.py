"""`minsky economy`: run an economy over a stream of tasks, audit its books."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from minsky.cli import render
from minsky.cli.checks import outputs, results_out
from minsky.cli.core import (
    backend_options,
    count,
    emit,
    friendly,
    limit_option,
    log_option,
    main,
    run_async,
    seed_option,
)
from minsky.cli.progress import Bar, progress_bar
from minsky.errors import MinskyError
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog


@main.group()
def economy() -> None:
    """The Economy of Minds: members earn, pay, go bankrupt and have children."""


@economy.command("run")
@click.option("--society", "-s", required=True, help="a built-in society or a file")
@click.option("--bench", required=True, help="a benchmark file or folder (as for eval)")
@click.option("--generations", "-g", type=count(1, 10_000), default=3, show_default=True)
@limit_option("tasks per generation", default=10, high=100_000)
@seed_option("generations × --limit tasks", 0, also="it seeds mutations too")
@click.option("--rules", type=click.Path(path_type=Path), default=None,
              help="a TOML file of economy rules (endowment, reward, tax_rate, rent, …)")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="also run the same society with the economy off on the same tasks")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="ledger and task log, JSONL (for `minsky economy audit`)")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="PNG of wealth over time")
@backend_options
@log_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def economy_run(society: str, bench: str, generations: int, limit: int, seed: int,
                model: str | None, rules: Path | None, compare: bool, out: Path | None,
                plot: Path | None, settings: BackendSettings, log_path: Path | None,
                as_json: bool) -> None:
    """A society answers a stream of tasks while the economy runs between them."""
    from pydantic import ValidationError

    from minsky import society as societies
    from minsky.backends.registry import Backends
    from minsky.economy.market import EconomyConfig
    from minsky.economy.run import plot_wealth, run_economy
    from minsky.evals.benchmarks import load_benchmark
    from minsky.inputs.limits import load_toml
    from minsky.paths import home_dir
    from minsky.runner import Runner
    from minsky.strict import error_line

    try:
        data = load_toml(rules.read_text(encoding="utf-8"), str(rules)) if rules else {}
        cfg = EconomyConfig.model_validate(data)
    except FileNotFoundError:
        raise MinskyError(f"rules file {rules} does not exist") from None
    except ValidationError as err:
        raise MinskyError(error_line(err, str(rules))) from None
    soc = societies.load(society, model)
    cases = load_benchmark(bench, generations * limit, seed)
    out = out or home_dir() / "economy" / f"{soc.name}-g{generations}-n{limit}-s{seed}.jsonl"
    outputs(out, plot)
    results_out(out)
    runner = Runner(Backends(settings), RunLog(log_path))
    seen = {"n": 0, "right": 0}  # of the stream running now (economy on, then off)

    def said(bar: Bar, stream: str) -> Any:
        def say(row: dict[str, Any]) -> None:
            seen["n"] += 1
            seen["right"] += bool(row["correct"])
            bar.advance(f"{stream}: accuracy {seen['right'] / seen['n']:.0%}")
            if not as_json:
                bar.say(f"gen {row['generation']} {row['case']}: "
                        f"{render.shown_answer(row['answer'], row.get('status'))} "
                        f"({'right' if row['correct'] else 'wrong'})")
        return say

    async def go(bar: Bar) -> dict[str, Any]:
        async with runner:
            report = await run_economy(runner, soc, cases, generations, limit, cfg, out, True,
                                       seed, said(bar, "economy on"))
            if compare:
                seen.update(n=0, right=0)
                base = await run_economy(runner, soc, cases, generations, limit, cfg,
                                         out.with_suffix(".baseline.jsonl"), False, seed,
                                         said(bar, "economy off"))
                report["baseline"] = base["generations"]
            return report

    tasks = generations * limit * (2 if compare else 1)
    with progress_bar("tasks", tasks, hidden=as_json) as bar:
        report = run_async(go(bar))
    report["out"] = str(out)
    if plot:
        plot_wealth(report["wealth_over_time"], plot, f"{soc.name}: wealth over time")
        report["plot"] = str(plot)
    emit(report, as_json, render.economy_report)


@economy.command("audit")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="print the audit as one JSON object (entries, conserved, expected_total, "
                   "actual_total)")
@friendly
def economy_audit(path: Path, as_json: bool) -> None:
    """Replay an economy's ledger from its output file and check that money is conserved
    (exit 1 when it is not)."""
    from minsky.economy.run import audit_file

    result = audit_file(path)
    emit(result, as_json, render.audit_result)
    if not result["conserved"]:
        sys.exit(1)
