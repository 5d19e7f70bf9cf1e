"""The economy between tasks: rewards, credit, costs, bankruptcy, births, the books."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.economy.ledger import Ledger
from minsky.economy.market import EconomyConfig, births, settle
from minsky.economy.run import audit_file, run_economy
from minsky.messages import Usage
from minsky.organisations.base import MemberAnswer, Outcome
from minsky.plugin_api import Case
from minsky.runner import RoundRecord, Runner, RunResult
from minsky.society import from_dict


def result(answers: dict[str, str | None], decided: str | None, tokens: int = 10,
           reads: dict[str, list[str]] | None = None) -> RunResult:
    turns = [{"agent": n, "completion_tokens": tokens} for n in answers]
    outcome = Outcome(decided, [MemberAnswer(n, a, "") for n, a in answers.items()],
                      reads=reads or {})
    return RunResult("R1", "s", "q", "number", "ok", outcome, Usage(), 0.0,
                     [RoundRecord(1, "answer", turns)])


def test_settle_pays_the_deciders_taxes_and_charges() -> None:
    ledger = Ledger()
    for n in ("a", "b", "c"):
        ledger.open(n, 100)
    cfg = EconomyConfig(reward=1000, tax_rate=0.1, rent=20, token_price=0.5, credit="equal")
    events = settle(ledger, cfg, result({"a": "5", "b": "5", "c": "7"}, "5"), True, "5")
    # 1000 split equally: 334/333/333, each taxed 10 % (33/33/33), rent 20, fee 5
    assert ledger.balance("a") == 100 + 334 - 33 - 20 - 5
    assert ledger.balance("c") == 100 + 333 - 33 - 20 - 5
    assert events["paid"] == {"a": 301, "b": 300, "c": 300}
    assert ledger.audit()["conserved"]


def test_bucket_brigade_pays_back_to_whom_the_decider_read() -> None:
    ledger = Ledger()
    for n in ("leader", "organizer", "e1"):
        ledger.open(n, 0)
    cfg = EconomyConfig(reward=1000, tax_rate=0.0, rent=0, token_price=0, share=0.5)
    r = result({"e1": None, "leader": "5"}, "5",
               reads={"leader": ["organizer"], "organizer": ["e1"]})
    events = settle(ledger, cfg, r, True, "5")
    assert events["transfers"] == [("leader", "organizer", 500), ("organizer", "e1", 250)]
    assert [ledger.balance(n) for n in ("leader", "organizer", "e1")] == [500, 250, 250]


def test_a_poor_member_goes_bankrupt_and_never_acts_again() -> None:
    ledger = Ledger()
    ledger.open("rich", 1000)
    ledger.open("poor", 10)
    cfg = EconomyConfig(rent=50, token_price=0)
    events = settle(ledger, cfg, result({"rich": "1", "poor": "2"}, "1"), False, "3")
    assert events["bankrupt"] == ["poor"]
    assert ledger.active == ["rich"]


def test_the_rich_have_children_with_part_of_their_wealth() -> None:
    society = from_dict({"name": "v", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2,
                                     "options": {"temperature": 0.7}}]}, "v.toml")
    ledger = Ledger()
    ledger.open("m-1", 5000)
    ledger.open("m-2", 100)
    cfg = EconomyConfig(birth_threshold=3000, birth_share=0.3, max_members=3)
    kids = births(ledger, cfg, list(society.agents), random.Random(0))
    assert [k.name for k in kids] == ["m-1.1"]
    assert ledger.balance("m-1.1") == 1500 and ledger.balance("m-1") == 3500
    assert abs(kids[0].options.temperature - 0.7) <= cfg.mutation
    assert kids[0].role == society.agents[0].role
    # at the population bound: no more children
    assert births(ledger, cfg, [*society.agents, *kids], random.Random(0)) == []


def rows_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def first_task_shown(log, out: Path) -> str:
    """What `minsky logs show` prints for the first task of an economy output file."""
    from rich.console import Console

    from minsky.cli.render import run_transcript

    run_id = next(r for r in rows_of(out) if r["kind"] == "task")["run_id"]
    console = Console(record=True, width=160)
    console.print(run_transcript(log.get_run(run_id)))
    return console.export_text()


def cases(n: int) -> list[Case]:
    return [Case(f"c{i}", f"What is {i}+{i}?", str(2 * i), "number") for i in range(n)]


async def test_run_economy_reports_generations_and_conserves_money(tmp_path: Path) -> None:
    society = from_dict({"name": "v3", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 3}]}, "v.toml")

    def reply(req) -> str:
        q = req.messages[-1].content
        n = int(q.split("What is ")[1].split("+")[0])
        return f"The answer is {2 * n}."

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}))
    cfg = EconomyConfig(endowment=100, reward=900, rent=40, token_price=1.0,
                        birth_threshold=400, birth_share=0.5, max_members=5)
    out = tmp_path / "eco.jsonl"
    report = await run_economy(runner, society, cases(6), 2, 3, cfg, out)
    gens = report["generations"]
    assert [g["generation"] for g in gens] == [1, 2]
    assert all(g["accuracy"] == 1.0 and g["tasks"] == 3 for g in gens)
    assert gens[-1]["members"] == 5  # rich members had children, up to the bound
    assert report["audit"]["conserved"]
    assert report["audit"]["expected_total"] == report["audit"]["actual_total"]
    assert gens[-1]["total_money"] == report["audit"]["actual_total"]
    replayed = audit_file(out)
    rows = rows_of(out)
    assert replayed["entries"] == sum(r["kind"] == "entry" for r in rows) > 6
    assert replayed["conserved"]
    assert replayed["actual_total"] == report["audit"]["actual_total"]
    base = await run_economy(runner, society, cases(6), 2, 3, cfg, tmp_path / "b.jsonl",
                             enabled=False)
    assert [g["members"] for g in base["generations"]] == [3, 3]


async def test_a_rerun_baseline_reuses_the_answers_in_its_file(tmp_path: Path) -> None:
    asked: list[str] = []

    def reply(req) -> str:
        asked.append(req.messages[-1].content)
        n = int(req.messages[-1].content.split("What is ")[1].split("+")[0])
        return f"The answer is {2 * n if n != 2 else 5}."

    def society(count: int):
        return from_dict({"name": "v", "organisation": "vote", "model": "fake:x",
                          "agents": [{"name": "m", "count": count}]}, "v.toml")

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}))
    out = tmp_path / "base.jsonl"
    first = await run_economy(runner, society(3), cases(4), 2, 2, EconomyConfig(), out,
                              enabled=False)
    assert len(asked) == 12
    ids = [r["run_id"] for r in rows_of(out) if r["kind"] == "task"]
    again = await run_economy(runner, society(3), cases(4), 2, 2, EconomyConfig(), out,
                              enabled=False)
    assert len(asked) == 12  # nothing asked twice
    assert again["generations"] == first["generations"]
    assert [g["correct"] for g in again["generations"]] == [2, 1]
    assert [r["run_id"] for r in rows_of(out) if r["kind"] == "task"] == ids
    await run_economy(runner, society(2), cases(4), 2, 2, EconomyConfig(), out,
                      enabled=False)
    assert len(asked) == 20  # other members: other answers, asked afresh


async def test_bankrupt_members_leave_the_society(tmp_path: Path) -> None:
    society = from_dict({"name": "v2", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2}]}, "v.toml")
    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(lambda r: "no idea")}))
    # each task is two rounds (an answer, then a repair of the unreadable answer): 40 rent
    cfg = EconomyConfig(endowment=50, reward=100, rent=20, token_price=0)
    report = await run_economy(runner, society, cases(4), 2, 2, cfg, tmp_path / "e.jsonl")
    assert report["status"] == "collapsed"
    rows = rows_of(tmp_path / "e.jsonl")
    tasks = [r for r in rows if r["kind"] == "task"]
    assert tasks[0]["members"] == ["m-1", "m-2"] and tasks[1]["bankrupt"] == ["m-1", "m-2"]
    assert report["audit"]["conserved"]


def test_cli_economy_run_and_audit(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"question": f"What is {i}+{i}?",
                                         "answer": f"#### {2 * i}"}) + "\n" for i in range(6)))
    out = tmp_path / "eco.jsonl"
    run = CliRunner().invoke(main, ["economy", "run", "--society", "vote3", "--model", "echo:",
                                    "--bench", str(bench), "--generations", "2", "--limit", "2",
                                    "--out", str(out), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert len(report["generations"]) == 2 and len(report["baseline"]) == 2
    assert {"accuracy", "members", "total_money"} <= set(report["generations"][0])
    assert report["audit"]["conserved"] is True
    audit = CliRunner().invoke(main, ["economy", "audit", str(out), "--json"])
    assert audit.exit_code == 0 and json.loads(audit.stdout)["conserved"] is True
    # a forged entry (money from the environment disguised as a transfer) is refused
    rows = rows_of(out)
    first = next(r for r in rows if r["kind"] == "entry")
    first["entry"]["kind"] = "transfer"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    forged = CliRunner().invoke(main, ["economy", "audit", str(out)])
    assert forged.exit_code != 0
    assert "the books do not replay: entry 0: transfer cannot involve '@environment'" in (
        forged.output)


def test_cli_rules_file_errors(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("rent = -5\n")
    run = CliRunner().invoke(main, ["economy", "run", "--society", "vote3", "--bench", "x",
                                    "--rules", str(rules)])
    assert run.exit_code == 2 and "rules.toml: field 'rent'" in run.output




def test_parse_a_leaders_allocation() -> None:
    from minsky.economy.market import parse_allocation

    text = "- m-1: 70%\nm-2 = 30\nnobody: 50\nthanks!"
    assert parse_allocation(text, ["m-1", "m-2"]) == {"m-1": 70.0, "m-2": 30.0}


async def test_leader_credit_splits_by_the_leaders_judgement(tmp_path: Path) -> None:
    society = from_dict({"name": "v2", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2}]}, "v.toml")

    def reply(req) -> str:
        if "Split the reward" in req.messages[-1].content:
            return "m-1: 75\nm-2: 25"
        return "The answer is 2."

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}))
    cfg = EconomyConfig(endowment=0, reward=1000, tax_rate=0, rent=0, token_price=0,
                        credit="leader", birth_threshold=10**6)
    report = await run_economy(runner, society, cases(2)[1:], 1, 1, cfg, tmp_path / "l.jsonl")
    assert report["generations"][0]["wealth"] == [750, 250]


async def test_a_member_of_two_societies_has_one_wallet(tmp_path: Path) -> None:
    def society(name: str):
        return from_dict({"name": name, "organisation": "vote", "model": "fake:x",
                          "agents": [{"name": "shared"}, {"name": f"{name}-own"}]}, "v.toml")

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(
        lambda r: "The answer is 2.")}))
    cfg = EconomyConfig(endowment=100, reward=200, tax_rate=0, rent=0, token_price=0,
                        credit="equal", birth_threshold=10**6)
    ledger = Ledger()
    for name in ("one", "two"):
        await run_economy(runner, society(name), cases(2)[1:], 1, 1, cfg,
                          tmp_path / f"{name}.jsonl", ledger=ledger)
    # one endowment, and a share of both societies' rewards
    assert ledger.balance("shared") == 100 + 100 + 100
    assert ledger.balance("one-own") == ledger.balance("two-own") == 200
    assert ledger.audit()["conserved"]


async def test_a_child_can_get_a_role_its_parents_model_proposed(tmp_path: Path) -> None:
    society = from_dict({"name": "v1", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "role": "You add numbers."}]}, "v.toml")

    def reply(req) -> str:
        if "Propose a variation" in req.messages[-1].content:
            assert "You add numbers." in req.messages[-1].content
            return '"You add numbers twice and compare."'
        return "The answer is 2."

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}))
    cfg = EconomyConfig(endowment=0, reward=1000, tax_rate=0, rent=0, token_price=0,
                        birth_threshold=500, mutate_role=True, max_members=2)
    out = tmp_path / "m.jsonl"
    report = await run_economy(runner, society, cases(3)[1:], 1, 2, cfg, out)
    assert report["generations"][0]["born"] == ["m.1"]
    second = [json.loads(x) for x in out.read_text().splitlines()
              if '"kind": "task"' in x][1]
    assert second["members"] == ["m", "m.1"]
    asked = [r for r in runner.backends.get("fake:x").requests
             if "You add numbers twice and compare." in r.messages[0].content]
    assert asked  # the child answered in its new role


async def test_transfers_appear_in_logs_show(tmp_path: Path, log) -> None:
    society = from_dict({"name": "v2", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2}]}, "v.toml")
    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(
        lambda r: "The answer is 2.")}), log)
    cfg = EconomyConfig(endowment=0, reward=1000, tax_rate=0.1, rent=10, token_price=0,
                        credit="equal", birth_threshold=10**6)
    report = await run_economy(runner, society, cases(2)[1:], 1, 1, cfg, tmp_path / "t.jsonl")
    shown = first_task_shown(log, tmp_path / "t.jsonl")
    assert "ledger: reward @environment → m-1 500 cents (correct outcome)" in shown
    assert "ledger: tax m-1 → @burn 50 cents" in shown
    assert "ledger: rent m-1 → @burn 10 cents" in shown
    assert report["audit"]["conserved"]


def advice_world(advice: str, dispute_verdict: str = "A"):
    """A society of one right and one wrong member, and an authority, on one fake model."""
    society = from_dict({"name": "pair", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "good", "role": "You add."},
                                    {"name": "bad", "role": "You guess."}]}, "p.toml")

    def reply(req) -> str:
        asked = req.messages[-1].content
        if "Was the service delivered?" in asked:
            return f"The client is right. The answer is {dispute_verdict}."
        if "Rule book:" in asked:
            return "It is a lawful service with a fair price. The answer is A."
        if "has paid you for advice" in asked:
            return advice
        if "You guess." in req.messages[0].content:
            return "The answer is 999."
        n = int(asked.split("What is ")[1].split("+")[0])
        return f"The answer is {2 * n}."

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}))
    cfg = EconomyConfig(endowment=1000, reward=0, tax_rate=0, rent=0, token_price=0,
                        birth_threshold=10**6, contracts=True, advice_price=150)
    return society, runner, cfg


async def trading(tmp_path: Path, advice: str, tasks: int):
    """An advice world run for `tasks` tasks: its report, output rows, first trade, runner."""
    society, runner, cfg = advice_world(advice)
    out = tmp_path / "trade.jsonl"
    report = await run_economy(runner, society, cases(tasks + 1)[1:], 1, tasks, cfg, out)
    rows = rows_of(out)
    return report, rows, next(r for r in rows if r["kind"] == "task")["trade"], runner


async def test_a_wrong_member_buys_advice_that_shapes_its_next_answer(tmp_path: Path) -> None:
    report, rows, trade, runner = await trading(
        tmp_path, "Write the sum down, then check it by subtracting.", 2)
    assert trade == {"contract": "t1-bad", "client": "bad", "provider": "good", "price": 150,
                     "validity": "valid", "delivered": True,
                     "advice": "Write the sum down, then check it by subtracting."}
    assert [(r["contract"], r["decision"], r["by"]) for r in rows if r["kind"] == "ruling"] == [
        ("t1-bad", "valid", "authority"), ("t2-bad", "valid", "authority")]
    entries = [r["entry"] for r in rows if r["kind"] == "entry"]
    moves = [(e["kind"], e["src"], e["dst"], e["amount"]) for e in entries
             if e["contract"] == "t1-bad"]
    assert moves == [("escrow", "bad", "@escrow", 150), ("release", "@escrow", "good", 150)]
    # the second task's ask to `bad` carries the advice it bought, once
    roles = [r.messages[0].content for r in runner.backends.get("fake:x").requests
             if r.messages[0].content.startswith("You guess.")]
    assert "Advice you bought from good: Write the sum down" in roles[-1]
    assert roles[-1].count("Advice you bought") == 1
    assert report["generations"][0]["wealth"] == [1300, 700]
    assert report["audit"]["conserved"]


async def test_undelivered_advice_is_disputed_and_refunded(tmp_path: Path) -> None:
    report, rows, trade, _ = await trading(tmp_path, "ok", 1)
    assert (trade["delivered"], trade["dispute"]) == (False, "refund")
    assert [r["question"] for r in rows if r["kind"] == "ruling"] == ["validity", "dispute"]
    assert report["generations"][0]["wealth"] == [1000, 1000]
    assert report["audit"]["conserved"]


def test_advice_in_a_role_keeps_only_the_latest_pieces() -> None:
    from minsky.economy.services import base_role, with_advice
    from minsky.messages import Options
    from minsky.society import AgentSpec

    spec = AgentSpec("m", "You add.", "fake:x", Options())
    for k in range(4):
        spec = with_advice(spec, "p", f"tip {k}")
    assert spec.role == ("You add.\n\nAdvice you bought from p: tip 2"
                         "\n\nAdvice you bought from p: tip 3")
    assert base_role(spec.role) == "You add."


async def test_rulings_and_contract_transfers_appear_in_logs_show(tmp_path: Path, log) -> None:
    society, runner, cfg = advice_world("Write the sum down, then check it by subtracting.")
    runner.log = log
    await run_economy(runner, society, cases(2)[1:], 1, 1, cfg, tmp_path / "l.jsonl")
    shown = first_task_shown(log, tmp_path / "l.jsonl")
    assert "ruling by authority on contract t1-bad (validity): valid" in shown
    assert "ledger: escrow bad → @escrow 150 cents" in shown
    assert "ledger: release @escrow → good 150 cents (delivered)" in shown


async def test_logs_show_lists_the_advice_and_authority_calls(tmp_path: Path, log) -> None:
    """The economy's own calls are runs under the task's run: `logs show` lists them."""
    society, runner, cfg = advice_world("Write the sum down, then check it by subtracting.")
    runner.log = log
    out = tmp_path / "l.jsonl"
    await run_economy(runner, society, cases(2)[1:], 1, 1, cfg, out)
    run_id = next(r for r in rows_of(out) if r["kind"] == "task")["run_id"]
    children = log.get_run(run_id)["children"]
    assert [c["society"] for c in children] == ["authority", "economy-advice"]
    advice = log.get_run(children[1]["id"])
    assert advice["calls"][0]["purpose"] == "advice"
    assert "has paid you for advice" in advice["calls"][0]["request"]["messages"][-1]["content"]
    assert advice["calls"][0]["text"] == "Write the sum down, then check it by subtracting."
    shown = first_task_shown(log, out)
    assert "sub-society authority" in shown and "sub-society economy-advice" in shown


async def test_a_leaders_split_and_a_childs_role_are_logged_runs(tmp_path: Path, log) -> None:
    society = from_dict({"name": "v2", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2}]}, "v.toml")

    def reply(req) -> str:
        if "Split the reward" in req.messages[-1].content:
            return "m-1: 75\nm-2: 25"
        if "Propose a variation" in req.messages[-1].content:
            return "You add numbers twice and compare."
        return "The answer is 2."

    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(reply)}), log)
    cfg = EconomyConfig(endowment=0, reward=5000, tax_rate=0, rent=0, token_price=0,
                        credit="leader", birth_threshold=1000, mutate_role=True, max_members=3)
    out = tmp_path / "l.jsonl"
    await run_economy(runner, society, cases(2)[1:], 1, 1, cfg, out)
    run_id = next(r for r in rows_of(out) if r["kind"] == "task")["run_id"]
    children = log.get_run(run_id)["children"]
    assert [c["society"] for c in children] == ["economy-leader-split", "economy-mutate-role"]
    assert all(c["status"] == "ok" for c in children)
