"""STaR rounds: mine with the current member, train from the base on every kept
rationale, measure, repeat.

Each round trains **the base model** on the union of all rationales kept so far (STaR's
rule against drift), not the previous round's model; only mining uses the newest member.
Every step leaves its file in the round's folder and is skipped when that file is there,
so a killed `minsky star run` resumes: mining through the results engine, training from
its checkpoint (a round counts as trained once its adapter's report is written, which an
interrupted training never does), the held-back evaluation through the results engine.

    DIR/round-0/heldout.jsonl      the base member on the held-back slice
    DIR/round-R/mined.jsonl        what round R kept (its .results/.hints files: the runs)
    DIR/round-R/sft.jsonl          the training rows: the union of rounds 1..R
    DIR/round-R/adapter.gguf       the adapter trained on them (+ .json: its report)
    DIR/round-R/heldout.jsonl      base + adapter on the held-back slice
    DIR/rounds.json                the table
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.evals.harness import evaluate_society, summarise
from minsky.inputs.records import jsonl_rows
from minsky.plugin_api import Case
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load
from minsky.star.export import sft_rows
from minsky.star.fresh import mine_fresh
from minsky.star.mine import Exclusion, append_mined, read_mined
from minsky.star.rows import Rationale, write_rows

HELDOUT_SOCIETY = "program"


@dataclass
class RoundReport:
    """One line of the rounds table."""

    round: int
    model: str
    problems: int = 0  # problems mined this round
    kept: int = 0  # new distinct right rationales this round
    union: int = 0  # rationales trained on (all rounds so far)
    hinted_share: float = 0.0  # of the union
    train_rows: int = 0
    train_minutes: float = 0.0
    tokens_per_s: float = 0.0
    heldout: float | None = None  # the member's greedy program on the held-back slice
    heldout_n: int = 0
    adapter: str | None = None


def heldout_accuracy(path: Path, society: str = HELDOUT_SOCIETY) -> tuple[float | None, int]:
    """Accuracy of `society` in a results file and the cases it counts, as `minsky eval`
    scores it (a failed run is left out, not a wrong answer)."""
    results = summarise(jsonl_rows(path), [society])["results"]
    return (results[0]["accuracy"], results[0]["n"]) if results else (None, 0)


async def evaluate_heldout(make: Callable[[], tuple[Runner, int]], model: str,
                           cases: Sequence[Case], out: Path, bench: str) -> None:
    """The `program` society on `model` over the held-back cases (resumable)."""
    runner, concurrency = make()
    async with runner:
        await evaluate_society(runner, load(HELDOUT_SOCIETY, model), cases, out, concurrency,
                               bench=bench)


def union_rows(folder: Path, upto: int) -> list[Rationale]:
    """The rationales of rounds 1..upto, in round order."""
    rows: list[Rationale] = []
    for r in range(1, upto + 1):
        rows += read_mined(folder / f"round-{r}" / "mined.jsonl")
    return rows


async def mine_round(make: Callable[[], tuple[Runner, int]], society_ref: str, model: str,
                     cases: Sequence[Case], folder: Path, r: int, excluded: Exclusion,
                     bench: str, rationalize: bool) -> None:
    """Round r's mining with `model` (skipped when its mined file is complete)."""
    target = folder / f"round-{r}" / "mined.jsonl"
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    runner, concurrency = make()
    async with runner:
        mined = await mine_fresh(runner, RunLog(), load(society_ref, model), cases,
                                 target.with_name("mine"), excluded, round_no=r,
                                 rationalize=rationalize, model=model,
                                 existing=union_rows(folder, r - 1), concurrency=concurrency,
                                 bench=bench)
    partial = target.with_name("mined.jsonl.part")
    partial.unlink(missing_ok=True)
    append_mined(partial, mined.rows)
    partial.replace(target)  # the mined file appears whole, or not at all


def write_table(folder: Path, reports: list[RoundReport]) -> None:
    """DIR/rounds.json: the table so far."""
    path = folder / "rounds.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in reports], indent=2) + "\n", "utf-8")
    tmp.replace(path)


def export_round(folder: Path, r: int, excluded: Exclusion, per_case: int,
                 kind: Any = "all", zero_shot: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Round r's training rows: SFT rows of the union of rounds 1..r (by default only
    replies asked without worked examples: see `sft_rows`)."""
    rows = sft_rows(union_rows(folder, r), excluded, kind, per_case, zero_shot=zero_shot)
    path = folder / f"round-{r}" / "sft.jsonl"
    write_rows(path, rows)
    return path, rows


@dataclass
class RoundPlan:
    """What `minsky star run` was asked to do."""

    bench: str
    society: str
    base: str
    rounds: int
    mine_cases: list[Case]
    heldout_cases: list[Case]
    excluded: Exclusion
    rationalize: bool = True
    per_case: int = 4
    train: dict[str, Any] | None = None  # keyword arguments of `train_adapter`


@contextlib.contextmanager
def _plain_ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt inside the block, as in a plain program: asyncio's
    own handler only cancels the task at its next await, which a long blocking call (the
    training) does not reach."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


async def run_rounds(plan: RoundPlan, folder: Path, make: Callable[[], tuple[Runner, int]],
                     say: Callable[[str], None] = lambda _: None) -> list[RoundReport]:
    """Round 0 (the base on the held-back slice), then `plan.rounds` STaR rounds."""
    from minsky.star.train import train_adapter

    folder.mkdir(parents=True, exist_ok=True)
    reports: list[RoundReport] = []
    base_eval = folder / "round-0" / "heldout.jsonl"
    base_eval.parent.mkdir(parents=True, exist_ok=True)
    say(f"round 0: the base member on {len(plan.heldout_cases)} held-back problems")
    await evaluate_heldout(make, plan.base, plan.heldout_cases, base_eval, plan.bench)
    acc, n = heldout_accuracy(base_eval)
    reports.append(RoundReport(0, plan.base, heldout=acc, heldout_n=n))
    write_table(folder, reports)
    model = plan.base
    for r in range(1, plan.rounds + 1):
        say(f"round {r}: mining {len(plan.mine_cases)} problems with {model}")
        await mine_round(make, plan.society, model, plan.mine_cases, folder, r,
                         plan.excluded, plan.bench, plan.rationalize)
        mined = read_mined(folder / f"round-{r}" / "mined.jsonl")
        union = [row for row in union_rows(folder, r) if row.correct]
        data, rows = export_round(folder, r, plan.excluded, plan.per_case)
        report = RoundReport(
            r, model, problems=len({row.case for row in mined}),
            kept=sum(row.correct for row in mined), union=len(union),
            hinted_share=round(sum(row.hinted for row in union) / max(1, len(union)), 3),
            train_rows=len(rows))
        adapter = folder / f"round-{r}" / "adapter.gguf"
        summary = adapter.with_suffix(".json")
        if not summary.exists():
            if not rows:
                raise MinskyError(f"round {r}: no right rationale kept so far, so nothing to "
                                  "train on (mine more problems: a larger --limit)")
            say(f"round {r}: training on {len(rows)} rows from {plan.base}")
            # subtle: training runs here, in the main thread, blocking the loop (nothing
            # else runs on it meanwhile): only there do Ctrl-C and SIGTERM stop it on a
            # checkpoint; in a worker thread they could not, and asyncio.run would wait
            # for the whole training before exiting
            with _plain_ctrl_c():
                trained = train_adapter(data, adapter, base=plan.base, **(plan.train or {}))
            if trained.stopped == "interrupted":
                raise KeyboardInterrupt  # no report: the rerun resumes the training
            if trained.adapter is None:
                raise MinskyError(f"round {r}: training wrote no adapter (no step trained)")
            summary.write_text(json.dumps(trained.to_dict(), indent=2) + "\n", "utf-8")
        trained_info = json.loads(summary.read_text("utf-8"))
        report.train_minutes = float(trained_info.get("minutes", 0.0))
        report.tokens_per_s = float(trained_info.get("tokens_per_s", 0.0))
        report.adapter = str(adapter)
        model = f"{plan.base}+{adapter}"
        held = folder / f"round-{r}" / "heldout.jsonl"
        say(f"round {r}: {model} on the held-back problems")
        await evaluate_heldout(make, model, plan.heldout_cases, held, plan.bench)
        report.heldout, report.heldout_n = heldout_accuracy(held)
        reports.append(report)
        write_table(folder, reports)
    return reports

