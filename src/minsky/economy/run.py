"""An economy over a stream of tasks: the society answers, the market settles, it evolves.

Generation after generation the society answers `per_generation` tasks of a benchmark
(different tasks each generation); after every task the economy settles (reward, credit,
rent, fees, bankruptcies), and rich members have children. With `enabled=False` the same
society answers the same stream with no economy: the honest baseline. Every ledger
entry is appended to the output JSONL (and noted on the task's run: a `Note` to the
runner's observers, which the run log keeps), so `minsky economy audit FILE` can replay
the books at any time.

An economy is not resumable mid-stream (its state is the books), but the baseline is:
with no economy each task is independent of the others, so a rerun reuses the answers
already in its file for the same case and the same members.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minsky.economy.contracts import Market, Ruling
from minsky.economy.ledger import Entry, Ledger, LedgerError
from minsky.economy.market import (
    EconomyConfig,
    births,
    leader_weights,
    mutate_role,
    settle,
)
from minsky.economy.services import trade_advice
from minsky.errors import MinskyError
from minsky.evals.formats import score
from minsky.evals.stats import wilson_interval
from minsky.plugin_api import Case
from minsky.results import Results, open_results, read_rows, society_identity
from minsky.run_events import Note
from minsky.runner import Runner, RunResult
from minsky.society import AgentSpec, Society, load


def _staffed(society: Society, agents: Sequence[AgentSpec]) -> bool:
    """Whether the members left still fill every group the organisation needs."""
    for group, (low, _) in society.organisation.groups.items():
        if sum(a.group == group for a in agents) < low:
            return False
    return True


def _has_room(society: Society, agents: Sequence[AgentSpec], group: str) -> bool:
    high = society.organisation.groups.get(group, (0, None))[1]
    return high is None or sum(a.group == group for a in agents) < high


async def run_economy(
    runner: Runner,
    society: Society,
    cases: Sequence[Case],
    generations: int,
    per_generation: int,
    cfg: EconomyConfig,
    out: Path,
    enabled: bool = True,
    seed: int = 0,
    on_task: Callable[[dict[str, Any]], None] | None = None,
    ledger: Ledger | None = None,
) -> dict[str, Any]:
    """Run the stream; returns the per-generation report and the audit.

    Pass a `ledger` to share wallets between societies: a member of several societies
    (the same name in each) has one wallet, and going bankrupt in one ends it in all.
    """
    if len(cases) < generations * per_generation:
        raise MinskyError(f"{generations} generations of {per_generation} tasks need "
                          f"{generations * per_generation} cases, got {len(cases)}")
    with open_results(out, fresh=True) as results:
        return await _stream(runner, society, cases, generations, per_generation, cfg,
                             results, enabled, seed, on_task, ledger)


async def _stream(
    runner: Runner, society: Society, cases: Sequence[Case], generations: int,
    per_generation: int, cfg: EconomyConfig, results: Results, enabled: bool, seed: int,
    on_task: Callable[[dict[str, Any]], None] | None, ledger: Ledger | None,
) -> dict[str, Any]:
    identity = society_identity(society)
    # the baseline's tasks are independent: answers of the same members under the same
    # settings are reused from the file this run replaces
    answered = {} if enabled else {
        (r["case"], tuple(r["members"])): r for r in results.previous
        if r.get("kind") == "task" and r.get("config", identity["config"]) == identity["config"]}
    write = results.append

    def sink(entry: Entry) -> None:
        write({"kind": "entry", "entry": entry.to_dict()})
        if entry.run_id:
            runner.emit(Note(entry.run_id, entry.round, "ledger", entry.to_dict()))

    if ledger is None:
        ledger = Ledger(sink)
    market = _market(runner, society, cfg, ledger, write) if enabled and cfg.contracts else None
    for a in society.agents:
        if a.name not in ledger.active and a.name not in ledger.bankrupt:
            ledger.open(a.name, cfg.endowment)
    stream = _Stream(runner, society, cfg, enabled, ledger, market, list(society.agents),
                     random.Random(seed), write, answered, identity["config"])
    report: list[dict[str, Any]] = []
    status = "ok"
    for g in range(generations):
        right = done = 0
        born: list[str] = []
        gone: list[str] = []
        for case in cases[g * per_generation : (g + 1) * per_generation]:
            row = await stream.task(case, g + 1)
            if row is None:
                status = "collapsed"
                break
            right += row["correct"]
            done += 1
            born += row.get("born", [])
            gone += row.get("bankrupt", [])
            if on_task:
                on_task(row)
        low, high = wilson_interval(right, done)
        report.append({
            "generation": g + 1, "tasks": done, "correct": right,
            "accuracy": right / done if done else 0.0,
            "ci_low": low, "ci_high": high,
            "members": len(ledger.active) if enabled else len(stream.agents),
            "total_money": ledger.total(),
            "wealth": sorted((ledger.balance(m) for m in ledger.active), reverse=True),
            "born": born, "bankrupt": gone,
        })
        if status != "ok":
            break
    audit = ledger.audit()
    write({"kind": "audit", **{k: audit[k] for k in
                               ("conserved", "expected_total", "actual_total")}})
    return {"society": society.name, "economy": enabled, "status": status,
            "generations": report, "wealth_over_time": stream.wealth,
            "audit": {k: audit[k] for k in ("conserved", "expected_total", "actual_total")}}


@dataclass
class _Stream:
    """What the tasks of one stream share: the members as they come and go, the books,
    the market, and the wealth after each task."""

    runner: Runner
    society: Society
    cfg: EconomyConfig
    enabled: bool
    ledger: Ledger
    market: Market | None
    agents: list[AgentSpec]
    rng: random.Random
    write: Callable[[dict[str, Any]], None]
    answered: dict[tuple[str, tuple[str, ...]], dict[str, Any]]
    config: dict[str, Any]
    wealth: list[dict[str, Any]] = field(default_factory=list)

    async def task(self, case: Case, generation: int) -> dict[str, Any] | None:
        """Answer `case` with the members left and settle it: its row, written; None
        when they no longer fill every group the organisation needs."""
        ledger = self.ledger
        members = ([a for a in self.agents if a.name in set(ledger.active)] if self.enabled
                   else self.agents)
        if not _staffed(self.society, members):
            return None
        names = [a.name for a in members]
        result = None  # (`answered` is empty with the economy on: it has a result)
        if (before := self.answered.get((case.id, tuple(names)))) is not None:
            answer, run_id = before["answer"], before["run_id"]
        else:
            result = await self.runner.run(replace(self.society, agents=members),
                                           case.question, case.kind)
            answer, run_id = result.answer, result.run_id
        correct = score(case, answer)
        row: dict[str, Any] = {"kind": "task", "generation": generation, "case": case.id,
                               "answer": answer, "correct": correct, "members": names,
                               "run_id": run_id, "config": self.config}
        if self.enabled:
            assert result is not None
            row.update(await self._settle(case, members, result, correct))
        self.write(row)
        self.wealth.append({"task": len(self.wealth) + 1, "total": ledger.total(),
                            "balances": {m: ledger.balance(m) for m in ledger.active}})
        return row

    async def _settle(self, case: Case, members: list[AgentSpec], result: RunResult,
                      correct: bool) -> dict[str, Any]:
        """Pay for a task, end the bankrupt, bear the children, trade advice: what the
        task's row records of it."""
        cfg = self.cfg
        weights = None
        if cfg.credit == "leader" and correct:
            leader = next((a for a in members if a.group == "leader"), members[0])
            weights = await leader_weights(self.runner, leader, result)
        events = settle(self.ledger, cfg, result, correct, case.answer, weights)
        kids = [k for k in births(self.ledger, cfg, members, self.rng, result.run_id)
                if _has_room(self.society, [*members], k.group)]
        if cfg.mutate_role:
            kids = [await mutate_role(self.runner, k, result.run_id) for k in kids]
        self.agents += kids
        out: dict[str, Any] = {"paid": events["paid"], "bankrupt": events["bankrupt"],
                               "born": [k.name for k in kids]}
        if self.market:
            self.market.ctx = {"run_id": result.run_id}
            self.market.expire(len(self.wealth) + 1)
            out["trade"], self.agents = await trade_advice(
                self.market, self.runner, case, result, self.agents, cfg.advice_price,
                len(self.wealth) + 1)
        return out


def _market(runner: Runner, society: Society, cfg: EconomyConfig, ledger: Ledger,
            write: Callable[[dict[str, Any]], None]) -> Market:
    """The advice market under the configured legal authority, its rulings logged."""
    model = next((a.model for a in society.agents if a.society is None), None)
    authority = load(cfg.authority, model)

    def on_ruling(ruling: Ruling) -> None:
        write({"kind": "ruling", **ruling.to_dict()})
        if run_id := market.ctx.get("run_id"):
            runner.emit(Note(run_id, None, "ruling", ruling.to_dict()))

    market = Market(ledger, runner, authority, on_ruling=on_ruling)  # on_ruling reads its ctx
    return market


def audit_file(path: Path) -> dict[str, Any]:
    """Replay an economy's ledger entries from its output file and audit them."""
    if not path.exists():
        raise MinskyError(f"economy file {path} does not exist")
    fields = set(Entry.__dataclass_fields__)
    try:
        rows = [r["entry"] for r in read_rows(path) if r.get("kind") == "entry"]
        entries = [Entry(**{k: v for k, v in r.items() if k in fields}) for r in rows]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise MinskyError(f"{path}: not an economy output file ({type(err).__name__}: "
                          f"{str(err)[:200]})") from None
    try:
        audit = Ledger.replay(entries).audit()
    except LedgerError as err:
        raise MinskyError(f"{path}: the books do not replay: {err}") from None
    return {"entries": len(entries), **{k: audit[k] for k in
                                        ("conserved", "expected_total", "actual_total")}}


def plot_wealth(wealth: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """A PNG of every member's balance and the total money, task by task."""
    try:
        import matplotlib
    except ImportError:
        raise MinskyError("--plot needs matplotlib: pip install 'minsky[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    names = sorted({n for w in wealth for n in w["balances"]})
    xs = [w["task"] for w in wealth]
    for n in names:
        ax.plot(xs, [w["balances"].get(n) for w in wealth], lw=1, label=n)
    ax.plot(xs, [w["total"] for w in wealth], "k--", lw=1.5, label="total")
    ax.set_xlabel("task")
    ax.set_ylabel("cents")
    ax.set_title(title)
    if len(names) <= 12:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
