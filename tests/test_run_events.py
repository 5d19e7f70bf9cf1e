"""Typed run events are the only way to watch or annotate a run: the sub-society link is a
typed field and a column of the log, annotations are `Note` events, and the log's SQL
stays in the run log's package, `minsky/runlog/`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.economy.market import EconomyConfig
from minsky.economy.run import run_economy
from minsky.evals.formats import Case
from minsky.messages import ChatReply, ChatRequest, Message, Usage
from minsky.run_events import CallDone, Note, RunEvent, RunStarted, emit
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import from_dict, load
from minsky.view.mindstorm import build

ROOT = Path(__file__).resolve().parents[1]
TEAM = """
name = "team"
organisation = "vote"
model = "fake:x"
answer = "text"

[[agents]]
name = "solver"
"""
PARENT = """
name = "parent"
organisation = "contest"
model = "fake:c"

[[agents]]
name = "team-a"
group = "proposer"
society = "team.toml"

[[agents]]
name = "solo"
group = "proposer"

[[agents]]
name = "critic"
group = "critic"
role = "You are a critic."
"""


def reply(request: ChatRequest) -> str:
    return "B" if "critic" in request.messages[0].content else "A plan."


async def nested_run(tmp_path: Path, log: RunLog | None) -> tuple[str, list[RunEvent]]:
    (tmp_path / "team.toml").write_text(TEAM, encoding="utf-8")
    (tmp_path / "parent.toml").write_text(PARENT, encoding="utf-8")
    events: list[RunEvent] = []
    fake = FunctionBackend(reply)
    runner = Runner(Backends(overrides={"fake:x": fake, "fake:c": fake}), log,
                    observers=[events.append])
    result = await runner.run(load(str(tmp_path / "parent.toml")), "Plan a picnic.")
    assert result.status == "ok"
    return result.run_id, events


def test_emit_tells_every_observer_in_order() -> None:
    heard: list[str] = []
    event = RunStarted("R", "s", {}, "q", "text", {})
    emit([lambda e: heard.append(f"a {e.run_id}"), lambda e: heard.append(f"b {e.run_id}")],
         event)
    assert heard == ["a R", "b R"]


async def test_a_sub_society_call_names_its_run_as_a_typed_field_and_a_column(
        tmp_path: Path, log: RunLog) -> None:
    top, events = await nested_run(tmp_path, log)
    (sub,) = [e.run_id for e in events if isinstance(e, RunStarted) and e.parent == top]
    calls = {e.agent: e for e in events if isinstance(e, CallDone) and e.run_id == top}
    assert calls["team-a"].child == sub
    assert calls["team-a"].where == f"society:team run {sub}"  # the logged text is as it was
    assert calls["solo"].child is None
    logged = {c["agent"]: c for c in log.get_run(top)["calls"]}
    assert logged["team-a"]["child_id"] == sub
    assert logged["solo"]["child_id"] is None
    with sqlite3.connect(log.path) as db:
        assert "child_id" in {r[1] for r in db.execute("PRAGMA table_info(calls)")}


def _call(log: RunLog, run_id: str, idx: int, backend: str, child: str | None) -> None:
    request = ChatRequest([Message("user", "Plan a picnic.")])
    log.log_call(run_id, 1, idx, f"member-{idx}", "fake:x", "propose", backend, request,
                 ChatReply("A plan.", Usage(1, 1), 0.1), child=child)


def _family(log: RunLog) -> tuple[str, str]:
    """A parent run (P…) and its sub-run (C…), both finished, the parent's round begun."""
    parent, child = "01JAAAAAAAAAAAAAAAAAAAAAAA", "01JBBBBBBBBBBBBBBBBBBBBBBB"
    log.start_run(parent, "parent", {}, "Plan a picnic.", "text", {})
    log.start_run(child, "team", {}, "Plan a picnic.", "text", {}, parent)
    log.start_round(parent, 1, "propose")
    for run_id in (parent, child):
        log.finish_run(run_id, "ok", "A plan.", {}, Usage(), 0.1)
    return parent, child


def test_the_viewer_follows_the_column_not_the_backend_text(log: RunLog) -> None:
    parent, child = _family(log)
    _call(log, parent, 0, "fake:x", child)  # linked by the column alone
    _call(log, parent, 1, f"society:team run {child}", None)  # by the text alone: no link
    cells = build(log, parent)["rounds"][0]["cells"]
    (linked,), (plain,) = cells["member-0"], cells["member-1"]
    assert linked["child_id"] == child
    assert linked["child"]["run"]["id"] == child
    assert plain["child_id"] is None
    assert plain["child"] is None


def test_old_rows_keep_their_link_read_only_and_once_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    log = RunLog(path)
    parent, child = _family(log)
    _call(log, parent, 0, f"society:team run {child}", None)
    _call(log, parent, 1, "fake:x (a run of 1)", None)  # not a sub-society's call
    log.close()
    # the log as a minsky before 008_call_child left it
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE calls DROP COLUMN child_id")
        db.execute("DELETE FROM migrations WHERE name = '008_call_child'")
    old = RunLog.read_only(path)
    assert [c["child_id"] for c in old.get_run(parent)["calls"]] == [child, None]
    assert old.missing_migrations() == ["008_call_child"]
    old.close()
    migrated = RunLog(path)
    assert [c["child_id"] for c in migrated.get_run(parent)["calls"]] == [child, None]
    assert migrated.missing_migrations() == []
    cells = build(migrated, parent)["rounds"][0]["cells"]
    assert cells["member-0"][0]["child"]["run"]["id"] == child
    migrated.close()


async def test_an_economy_notes_its_ledger_to_the_observers(tmp_path: Path) -> None:
    society = from_dict({"name": "v2", "organisation": "vote", "model": "fake:x",
                         "agents": [{"name": "m", "count": 2}]}, "v.toml")
    notes: list[Note] = []
    runner = Runner(Backends(overrides={"fake:x": FunctionBackend(lambda r: "The answer is 2.")}),
                    observers=[lambda e: notes.append(e) if isinstance(e, Note) else None])
    cfg = EconomyConfig(endowment=0, reward=1000, tax_rate=0.1, rent=10, token_price=0,
                        credit="equal", birth_threshold=10**6)
    await run_economy(runner, society, [Case("c1", "What is 1+1?", "2", "number")], 1, 1, cfg,
                      tmp_path / "e.jsonl")
    ledger = [n for n in notes if n.kind == "ledger"]
    assert ledger
    assert {n.run_id for n in ledger} == {next(iter(ledger)).run_id}
    assert any(n.data["kind"] == "reward" for n in ledger)


# -- the rule, kept ------------------------------------------------------------------------

SQL = re.compile(r"\b(select\s.*\sfrom|insert into|update \w+ set|delete from|"
                 r"create (table|index)|pragma \w+)\b|execute(many|script)?\(\s*f?[\"']|"
                 r"sqlite3\.connect\(|\.db\.execute", re.IGNORECASE)
SUBCLASS = re.compile(r"^\s*class \w+\([^)]*\bRunLog\b[^)]*\)\s*:", re.MULTILINE)


def _sources() -> list[Path]:
    """The project's Python under src/ and benchmarks/ (not a virtual environment a
    benchmark keeps in a hidden folder there)."""
    found = [*(ROOT / "src").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    return sorted(p for p in found if not any(
        part.startswith(".") or part == "site-packages" for part in p.relative_to(ROOT).parts))


RUNLOG = "src/minsky/runlog/"  # the run log's package: every module in it


def _allowed(name: str, allowed: set[str]) -> bool:
    """Whether file `name` may hold what a rule forbids: it is one of `allowed`, or inside
    a package of it (an entry that ends in "/")."""
    return any(name == a or (a.endswith("/") and name.startswith(a)) for a in allowed)


@pytest.mark.parametrize(("what", "pattern", "allowed"), [
    ("SQL", SQL, {RUNLOG}),
    ("a RunLog subclass", SUBCLASS, {RUNLOG}),
    ("runner.log.event", re.compile(r"runner\.log\.event"), set()),
    # the log observer is the one writer of a run's events
    ("an event written to the log", re.compile(r"\blog\.event\("),
     {RUNLOG, "src/minsky/run_events.py"}),
])
def test_the_run_log_is_watched_through_events_and_queried_in_runlog(
        what: str, pattern: re.Pattern[str], allowed: set[str]) -> None:
    found = []
    for path in _sources():
        name = path.relative_to(ROOT).as_posix()
        if _allowed(name, allowed):
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{name}: {m.group(0)!r}" for m in pattern.finditer(text)]
    assert not found, f"{what} outside {sorted(allowed) or 'nowhere'}: {found}"


def test_the_rule_would_catch_what_it_forbids() -> None:
    assert SQL.search('rows = log.db.execute("SELECT id FROM runs")')
    assert SQL.search('n = conn.execute("select count(*) from calls where run_id = ?")')
    assert not SQL.search("self.execute(stmt, scope)")  # pyrun's interpreter, not SQL
    assert SUBCLASS.search("class _ObservedLog(RunLog):")
    # the package is allowed, and nothing beside it: not a module or package named alike
    assert _allowed("src/minsky/runlog/_log.py", {RUNLOG})
    assert _allowed("src/minsky/runlog/__init__.py", {RUNLOG})
    for elsewhere in ("src/minsky/runlog.py", "src/minsky/runlogs/x.py",
                      "src/minsky/run_events.py", "src/minsky/view/runlog/_x.py"):
        assert not _allowed(elsewhere, {RUNLOG}), elsewhere


def test_the_viewer_opens_a_log_from_before_the_child_column_and_scores(
        tmp_path: Path) -> None:
    from minsky.view.source import open_log

    path = tmp_path / "old.db"
    log = RunLog(path)
    parent, child = _family(log)
    _call(log, parent, 0, f"society:team run {child}", None)
    log.close()
    with sqlite3.connect(path) as db:  # as a minsky before 008 and 009 left it
        db.execute("ALTER TABLE calls DROP COLUMN child_id")
        db.execute("DROP TABLE scores")
        db.execute("DELETE FROM migrations WHERE name IN ('008_call_child', '009_scores')")
    view = build(open_log(path), parent)
    (cell,) = view["rounds"][0]["cells"]["member-0"]
    assert cell["child_id"] == child
