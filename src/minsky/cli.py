"""The `minsky` command line: ask a society, list societies and models, read the run log.

Results go to stdout (`--json` for machines), progress to stderr. Errors a user can fix
are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from minsky import render
from minsky.errors import MinskyError
from minsky.models import MODELS, default_model
from minsky.plugins import BackendSettings
from minsky.runlog import RunLog


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MinskyError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper


def _emit(data: Any, as_json: bool, view: Callable[[Any], Any]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        render.print_renderable(view(data))


@click.group()
@click.version_option(package_name="minsky")
def main() -> None:
    """minsky: societies of small language models that solve tasks together."""


@main.command()
@click.argument("question", required=False)
@click.option("--society", "-s", default="vote5", show_default=True,
              help="a built-in society name or a society TOML file")
@click.option("--model", "-m", default=None,
              help=f"model for every agent: {', '.join(MODELS)}, a GGUF path or openai:MODEL "
                   "(default: the society's, else $MINSKY_MODEL, else qwen0.5b)")
@click.option("--answer", "kind", type=click.Choice(["auto", "number", "choice", "text"]),
              default=None, help="kind of answer to extract (default: the society's, auto)")
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores)")
@click.option("--parallel", type=int, default=8, show_default=True,
              help="sequences decoded in one batch")
@click.option("--ctx", "n_ctx", type=int, default=16384, show_default=True,
              help="KV cache tokens, all sequences together")
@click.option("--resume", default=None, help="continue an interrupted run from the log")
@click.option("--no-log", is_flag=True, help="do not write this run to the run log")
@click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object")
@_friendly
def ask(question: str | None, society: str, model: str | None, kind: str | None,
        threads: int | None, parallel: int, n_ctx: int, resume: str | None, no_log: bool,
        as_json: bool) -> None:
    """Ask a society QUESTION and print its answer, who said what, tokens and time."""
    from pydantic import ValidationError

    from minsky import society as societies
    from minsky.runner import Backends, Runner

    log = None if no_log else RunLog()
    if resume:
        if log is None:
            raise MinskyError("--resume reads the run log; drop --no-log")
        old = log.get_run(resume)
        question = question or old["question"]
        # a run made with --model used one model for every agent: keep it on resume
        models = list(old["models"] or {})
        if model is None and len(models) == 1 and not models[0].startswith("society:"):
            model = models[0]
        soc = societies.from_dict(old["society_config"], f"run {resume}", model)
        kind = kind or old["kind"]
    else:
        if not question:
            raise MinskyError("ask needs a QUESTION (or --resume RUN_ID)")
        soc = societies.load(society, model)
    try:
        settings = BackendSettings(threads=threads, parallel=parallel, n_ctx=n_ctx)
    except ValidationError as err:
        first = err.errors()[0]
        raise MinskyError(f"option --{first['loc'][0]}: {first['msg']}") from None
    runner = Runner(Backends(settings), log)
    say = (lambda msg: click.echo(msg, err=True)) if not as_json else None
    if say:
        say(f"society {soc.name} · {len(soc.agents)} member(s) · models "
            f"{', '.join(sorted({a.model for a in soc.agents}))}")

    async def go() -> Any:
        try:
            return await runner.run(soc, question, None if kind == "auto" else kind,
                                    resume=resume, progress=say)
        finally:
            await runner.backends.aclose()

    try:
        result = asyncio.run(go())
    except KeyboardInterrupt:
        click.echo("interrupted; what finished is in the run log (minsky logs list)", err=True)
        sys.exit(130)
    _emit(result.to_dict(), as_json, render.run_summary)
    if result.status not in ("ok",):
        sys.exit(1)


@main.command()
@click.argument("questions", type=click.Path(path_type=Path))
@click.option("--society", "-s", default="vote5", show_default=True)
@click.option("--model", "-m", default=None, help="model for every agent (as for ask)")
@click.option("--field", default="question", show_default=True,
              help="the question's key in a JSONL file")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="results JSONL (default: QUESTIONS.SOCIETY.results.jsonl); reruns resume")
@click.option("--concurrency", "-c", default=4, show_default=True,
              help="questions in flight at once")
@click.option("--answer", "kind", type=click.Choice(["auto", "number", "choice", "text"]),
              default=None)
@click.option("--threads", type=int, default=None)
@click.option("--parallel", type=int, default=16, show_default=True)
@_friendly
def batch(questions: Path, society: str, model: str | None, field: str, out: Path | None,
          concurrency: int, kind: str | None, threads: int | None, parallel: int) -> None:
    """Run a society on every question of a JSONL or text file, several at once."""
    from minsky import society as societies
    from minsky.batch import read_questions, run_batch
    from minsky.runner import Backends, Runner

    items = read_questions(questions, field)
    soc = societies.load(society, model)
    out = out or questions.with_name(f"{questions.stem}.{soc.name}.results.jsonl")
    runner = Runner(Backends(BackendSettings(threads=threads, parallel=parallel)), RunLog())
    click.echo(f"{len(items)} question(s) · society {soc.name} · results → {out}", err=True)

    def show(row: dict[str, Any]) -> None:
        click.echo(f"{row['id']}: {row['answer']} ({row['status']}, {row['wall_s']} s)",
                   err=True)

    async def go() -> list[dict[str, Any]]:
        try:
            return await run_batch(runner, soc, items, out, concurrency,
                                   None if kind in (None, "auto") else kind, show)
        finally:
            await runner.backends.aclose()

    rows = asyncio.run(go())
    click.echo(json.dumps({"questions": len(items), "answered_now": len(rows), "out": str(out)}))


@main.command("eval")
@click.option("--bench", required=True, help="a benchmark file or folder (format detected)")
@click.option("--society", "-s", "society_refs", multiple=True, required=True,
              help="a society to evaluate (repeat to compare; the first is the reference)")
@click.option("--model", "-m", default=None, help="model for every agent (as for ask)")
@click.option("--limit", type=int, default=None, help="number of cases")
@click.option("--seed", type=int, default=None, help="sample --limit cases with this seed")
@click.option("--map", "mapping", default=None,
              help="generic JSONL fields, e.g. question=q,answer=a,choices=opts")
@click.option("--matched", is_flag=True,
              help="also run vote with as many samples as each society made calls")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="results JSONL (default under $MINSKY_HOME/evals); reruns resume")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="PNG of accuracy against members/samples")
@click.option("--concurrency", "-c", default=4, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--parallel", type=int, default=16, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_friendly
def evaluate_cmd(bench: str, society_refs: tuple[str, ...], model: str | None,
                 limit: int | None, seed: int | None, mapping: str | None, matched: bool,
                 out: Path | None, plot: Path | None, concurrency: int,
                 threads: int | None, parallel: int, as_json: bool) -> None:
    """Evaluate societies on a benchmark: accuracy with CIs, tokens, time, paired tests."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from minsky import society as societies
    from minsky.evaluate import evaluate_society, matched_vote, plot_scaling, read_rows
    from minsky.evaluate import summarise as summarise_eval
    from minsky.loaders import load_benchmark
    from minsky.paths import home_dir
    from minsky.runner import Backends, Runner

    fields = None
    if mapping:
        try:
            fields = dict(part.split("=", 1) for part in mapping.split(","))
        except ValueError:
            raise MinskyError(f"--map {mapping!r}: expected key=field pairs") from None
    cases = load_benchmark(bench, limit, seed, fields)
    socs = [societies.load(ref, model) for ref in society_refs]
    stem = Path(bench).stem
    out = out or home_dir() / "evals" / f"{stem}-n{len(cases)}-s{seed}.jsonl"
    runner = Runner(Backends(BackendSettings(threads=threads, parallel=parallel)), RunLog())
    console = Console(stderr=True)

    async def run_all() -> list[str]:
        names = []
        try:
            queue = list(socs)
            while queue:
                soc = queue.pop(0)
                names.append(soc.name)
                with Progress(TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.completed}/{task.total} · {task.fields[acc]}"),
                              TimeRemainingColumn(), console=console,
                              disable=as_json) as bar:
                    task = bar.add_task(soc.name, total=len(cases), acc="")
                    seen = {"n": 0, "right": 0}

                    def tick(row: dict[str, Any], bar: Any = bar, task: Any = task,
                             seen: dict[str, int] = seen) -> None:
                        seen["n"] += 1
                        seen["right"] += bool(row["correct"])
                        bar.update(task, advance=1,
                                   acc=f"accuracy {seen['right'] / seen['n']:.0%}")

                    done = sum(1 for r in read_rows(out)
                               if r.get("society") == soc.name and "case" in r)
                    bar.update(task, completed=done)
                    await evaluate_society(runner, soc, cases, out, concurrency, tick)
                if matched and soc.config.organisation != "vote":
                    mine = [r for r in read_rows(out)
                            if r.get("society") == soc.name and "case" in r]
                    calls = sum(r["calls"] for r in mine) / max(1, len(mine))
                    own = next((a.model for a in soc.agents if a.society is None), None)
                    queue.insert(0, matched_vote(calls, model or own))
        finally:
            await runner.backends.aclose()
        return names

    names = asyncio.run(run_all())
    summary = summarise_eval(read_rows(out), names)
    summary.update({"bench": str(bench), "cases": len(cases), "out": str(out)})
    if plot:
        members = {s.name: len(s.agents) for s in socs}
        members.update({n: int(n.split("@")[1]) for n in names if n.startswith("vote@")})
        plot_scaling(summary["results"], members, plot, f"{stem}: {len(cases)} cases")
        summary["plot"] = str(plot)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    render.print_renderable(render.eval_table(summary))


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
@click.option("--model", "-m", default=None, help="model for every agent of every society")
@click.option("--limit", type=int, default=None)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None)
@click.option("--plot", type=click.Path(path_type=Path), default=None)
@click.option("--concurrency", "-c", default=4, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@_friendly
def arena(prompts: Path, field: str, contestants: tuple[str, ...], judge: str,
          judge_prompts: Path | None, judge_prompt_name: str, constitution: Path | None,
          model: str | None, limit: int | None, out: Path | None, plot: Path | None,
          concurrency: int, threads: int | None, as_json: bool) -> None:
    """Pairwise judging in both orders; Bradley–Terry and Elo ratings with CIs."""
    from minsky import society as societies
    from minsky.arena import (
        judge_template,
        leaderboard,
        plot_leaderboard,
        read_prompts,
        run_arena,
    )
    from minsky.paths import home_dir
    from minsky.records import jsonl_rows
    from minsky.runner import Backends, Runner

    items = read_prompts(prompts, field)[:limit]
    socs = [societies.load(ref, model) for ref in contestants]
    judge_soc = societies.load(judge, model)
    template = judge_template(judge_prompts, judge_prompt_name)
    if constitution and not constitution.is_file():
        raise MinskyError(f"constitution {constitution} does not exist")
    rules = constitution.read_text(encoding="utf-8") if constitution else None
    out = out or home_dir() / "arenas" / f"{prompts.stem}-{len(items)}.jsonl"
    runner = Runner(Backends(BackendSettings(threads=threads)), RunLog())
    say = None if as_json else (lambda msg: click.echo(msg, err=True))

    async def go() -> None:
        try:
            await run_arena(runner, items, socs, judge_soc, template, out, rules,
                            concurrency, say)
        finally:
            await runner.backends.aclose()

    asyncio.run(go())
    board = leaderboard(jsonl_rows(out))
    board.update({"prompts": len(items), "judge": judge_soc.name, "out": str(out)})
    if plot:
        plot_leaderboard(board["leaderboard"], plot, f"{prompts.stem}: {len(items)} prompts")
        board["plot"] = str(plot)
    if as_json:
        click.echo(json.dumps(board, indent=2))
        return
    for r in board["leaderboard"]:
        click.echo(f"{r['contestant']:<16} {r['rating']:7.1f}  [{r['ci_low']:.0f}, "
                   f"{r['ci_high']:.0f}]  elo {r['elo']:.0f}  W/T/L {r['wins']}/{r['ties']}/"
                   f"{r['losses']}")
    lb = board["length_bias"]
    click.echo(f"order flips: {board['flip_rate']:.0%} of {board['pairs']} pairs; "
               f"longer answer won {lb.get('share') if lb.get('share') is not None else '-'} "
               f"of decisive games · results {out}")


@main.command()
@click.option("--bench", type=click.Path(path_type=Path), required=True,
              help="a benchmark file (JSONL or text, examples in canonical order)")
@click.option("--model", "-m", default=None, help="a shipped model name or a GGUF path")
@click.option("--shards", default=5, show_default=True)
@click.option("--per-shard", default=8, show_default=True, help="examples per shard")
@click.option("--permutations", default=10, show_default=True, help="random orders per shard")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@_friendly
def contamination(bench: Path, model: str | None, shards: int, per_shard: int,
                  permutations: int, seed: int, threads: int | None, as_json: bool) -> None:
    """Was BENCH in the model's training data? The permutation test of Oren et al. (2023)."""
    from minsky.contamination import backend_loglik, contamination_test, examples_of
    from minsky.runner import Backends

    examples = examples_of(bench)
    backend = Backends(BackendSettings(threads=threads)).get(model or default_model())
    loglik = backend_loglik(backend)

    async def go() -> dict[str, Any]:
        try:
            return await contamination_test(loglik, examples, shards, per_shard,
                                            permutations, seed)
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    result.update({"bench": str(bench), "model": backend.describe()})
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    verdict = "evidence of contamination" if result["p_value"] < 0.05 else "no evidence"
    click.echo(f"{bench}: {shards} shards × {per_shard} examples, {permutations} orders each")
    click.echo(f"canonical − shuffled log-likelihood, mean {result['mean_difference']:+.2f} "
               f"nats; t = {result['t']:.2f} (df {result['df']}); p = {result['p_value']:.3g}"
               f" → {verdict} (at 0.05)")


@main.group()
def economy() -> None:
    """The Economy of Minds: members earn, pay, go bankrupt and have children."""


@economy.command("run")
@click.option("--society", "-s", required=True, help="a built-in society or a file")
@click.option("--bench", required=True, help="a benchmark file or folder (as for eval)")
@click.option("--generations", "-g", default=3, show_default=True)
@click.option("--limit", "-n", default=10, show_default=True, help="tasks per generation")
@click.option("--seed", default=0, show_default=True, help="task sample and mutations")
@click.option("--model", "-m", default=None)
@click.option("--rules", type=click.Path(path_type=Path), default=None,
              help="a TOML file of economy rules (endowment, reward, tax_rate, rent, …)")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="also run the same society with the economy off on the same tasks")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="ledger and task log, JSONL (for `minsky economy audit`)")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="PNG of wealth over time")
@click.option("--threads", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@_friendly
def economy_run(society: str, bench: str, generations: int, limit: int, seed: int,
                model: str | None, rules: Path | None, compare: bool, out: Path | None,
                plot: Path | None, threads: int | None, as_json: bool) -> None:
    """A society answers a stream of tasks while the economy runs between them."""
    import tomllib

    from pydantic import ValidationError

    from minsky import society as societies
    from minsky.economy.market import EconomyConfig
    from minsky.economy.run import plot_wealth, run_economy
    from minsky.loaders import load_benchmark
    from minsky.paths import home_dir
    from minsky.runner import Backends, Runner

    try:
        data = tomllib.loads(rules.read_text(encoding="utf-8")) if rules else {}
        cfg = EconomyConfig.model_validate(data)
    except FileNotFoundError:
        raise MinskyError(f"rules file {rules} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise MinskyError(f"{rules}: not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise MinskyError(f"{rules}: field '{'.'.join(map(str, first['loc']))}': "
                          f"{first['msg']}") from None
    soc = societies.load(society, model)
    cases = load_benchmark(bench, generations * limit, seed)
    out = out or home_dir() / "economy" / f"{soc.name}-g{generations}-n{limit}-s{seed}.jsonl"
    runner = Runner(Backends(BackendSettings(threads=threads)), RunLog())
    say = None if as_json else (
        lambda row: click.echo(f"gen {row['generation']} {row['case']}: {row['answer']} "
                               f"({'right' if row['correct'] else 'wrong'})", err=True))

    async def go() -> dict[str, Any]:
        try:
            report = await run_economy(runner, soc, cases, generations, limit, cfg, out, True,
                                       seed, say)
            if compare:
                base = await run_economy(runner, soc, cases, generations, limit, cfg,
                                         out.with_suffix(".baseline.jsonl"), False, seed, say)
                report["baseline"] = base["generations"]
            return report
        finally:
            await runner.backends.aclose()

    report = asyncio.run(go())
    report["out"] = str(out)
    if plot:
        plot_wealth(report["wealth_over_time"], plot, f"{soc.name}: wealth over time")
        report["plot"] = str(plot)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    base = {g["generation"]: g for g in report.get("baseline", [])}
    for g in report["generations"]:
        off = base.get(g["generation"])
        click.echo(f"generation {g['generation']}: accuracy {g['accuracy']:.0%} "
                   f"[{g['ci_low']:.0%}, {g['ci_high']:.0%}]"
                   + (f" (economy off: {off['accuracy']:.0%})" if off else "")
                   + f" · members {g['members']} · money {g['total_money']}"
                   + (f" · born {', '.join(g['born'])}" if g["born"] else "")
                   + (f" · bankrupt {', '.join(g['bankrupt'])}" if g["bankrupt"] else ""))
    a = report["audit"]
    click.echo(f"audit: {'conserved' if a['conserved'] else 'NOT CONSERVED'} "
               f"(expected {a['expected_total']}, actual {a['actual_total']}) · {out}")


@economy.command("audit")
@click.argument("path", type=click.Path(path_type=Path))
@_friendly
def economy_audit(path: Path) -> None:
    """Replay an economy's ledger from its output file and check that money is conserved."""
    from minsky.economy.run import audit_file

    result = audit_file(path)
    click.echo(json.dumps(result, indent=2))
    if not result["conserved"]:
        sys.exit(1)


@main.group()
def toolformer() -> None:
    """Toolformer: self-supervised tool-call annotation."""


@toolformer.command("annotate")
@click.option("--corpus", type=click.Path(path_type=Path), required=True,
              help="JSONL (see --field) or text file, one text a line")
@click.option("--field", default="text", show_default=True)
@click.option("--tool", "tool_name", default="Calculator", show_default=True)
@click.option("--model", "-m", default=None, help="a shipped model name or GGUF path")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="augmented corpus, JSONL; reruns resume")
@click.option("--limit", type=int, default=None, help="first N texts only")
@click.option("--tau-s", type=float, default=0.05, show_default=True)
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--m", "m", type=int, default=5, show_default=True)
@click.option("--tau-f", type=float, default=1.0, show_default=True)
@click.option("--threads", type=int, default=None)
@_friendly
def toolformer_annotate(corpus: Path, field: str, tool_name: str, model: str | None,
                        out: Path, limit: int | None, tau_s: float, k: int, m: int,
                        tau_f: float, threads: int | None) -> None:
    """Find where calls to a tool help the model predict a text, and keep those calls."""
    from minsky.backends.llama import LlamaBackend
    from minsky.models import resolve_gguf
    from minsky.plugins import NoOptions, ToolContext, tool_types
    from minsky.toolformer import AnnotateConfig, annotate_corpus, read_corpus

    types = tool_types()
    if tool_name not in types or types[tool_name].options is not NoOptions:
        usable = sorted(n for n, t in types.items() if t.options is NoOptions)
        raise MinskyError(f"--tool {tool_name!r}: expected one of {usable}")
    tool = types[tool_name].create(NoOptions(), ToolContext(None, Path.cwd()))
    cfg = AnnotateConfig(tau_s=tau_s, k=k, m=m, tau_f=tau_f)
    texts = read_corpus(corpus, field)[:limit]
    backend = LlamaBackend(resolve_gguf(model or default_model()), n_threads=threads)

    async def go() -> dict[str, Any]:
        try:
            return await annotate_corpus(texts, tool, backend, cfg, out,
                                         lambda msg: click.echo(msg, err=True))
        finally:
            await backend.aclose()

    click.echo(json.dumps(asyncio.run(go()), indent=2))


@main.command("societies")
@click.option("--json", "as_json", is_flag=True)
@_friendly
def list_societies(as_json: bool) -> None:
    """List the built-in societies."""
    from minsky import society as societies

    rows: list[dict[str, Any]] = []
    for name in societies.builtin_names():
        soc = societies.load(name)
        rows.append({"name": name, "organisation": soc.config.organisation,
                     "members": len(soc.agents), "description": soc.config.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['organisation']:<9} {r['members']:>2} member(s)  "
                   f"{r['description']}")


@main.command("models")
@_friendly
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
@_friendly
def logs_list(limit: int, as_json: bool) -> None:
    """The latest runs, newest first."""
    runs = RunLog().list_runs(limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    for r in runs:
        q = " ".join(r["question"].split())[:60]
        click.echo(f"{r['id']}  {r['society']:<10} {r['status']:<11} "
                   f"answer={r['answer']!s:<8} {q}")


@logs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@_friendly
def logs_show(run_id: str, as_json: bool) -> None:
    """One run, round by round: who was asked what, what each said, the decision."""
    _emit(RunLog().get_run(run_id), as_json, render.run_transcript)
