"""The SQLite run log: migrations, writing and reading runs, resume support, request hashes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Message, Options, Usage
from minsky.runlog import RunLog, request_hash
from minsky.runlog import _schema as schema  # the migrations, patched below


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[RunLog]:
    run_log = RunLog(db_path)
    yield run_log
    run_log.close()


def request(
    user: str = "What is 2+3?", system: str = "You solve.", grammar: str | None = None, **options
) -> ChatRequest:
    return ChatRequest(
        [Message("system", system), Message("user", user)], Options(**options), grammar=grammar
    )


def start(log: RunLog, run_id: str, question: str = "q?") -> None:
    log.start_run(run_id, "vote3", {"name": "vote3"}, question, "number", {"m": "scripted"})


def add_call(log: RunLog, run_id: str, round_no: int = 1, idx: int = 0, text: str = "5",
             agent: str = "a", finish: str = "stop", **options) -> str:
    reply = ChatReply(text, Usage(3, 1, 2), 0.25, finish, "boom" if finish == "error" else None)
    return log.log_call(
        run_id, round_no, idx, agent, "m", "answer", "scripted", request(**options), reply
    )


# -- migrations ----------------------------------------------------------------------------


def migrations(path: Path) -> list[str]:
    """Applied migrations, in the order they were applied."""
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY rowid")]


SHIPPED = [name for name, _ in schema.MIGRATIONS]


def test_shipped_migrations_are_named_in_order() -> None:
    assert SHIPPED[0] == "001_initial"
    assert sorted(SHIPPED) == SHIPPED
    assert len(set(SHIPPED)) == len(SHIPPED)


def test_migrations_are_applied_once(db_path: Path) -> None:
    first = RunLog(db_path)
    start(first, "R1")
    first.close()
    assert migrations(db_path) == SHIPPED
    second = RunLog(db_path)  # would fail with "table runs already exists" if re-applied
    assert migrations(db_path) == SHIPPED
    assert second.get_run("R1")["question"] == "q?"
    second.close()


def test_new_migrations_run_once_in_order(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RunLog(db_path).close()
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        [
            *schema.MIGRATIONS,
            ("900_extra", "CREATE TABLE extra (x INTEGER);"),
            ("901_extra_row", "INSERT INTO extra VALUES (1);"),
        ],
    )
    RunLog(db_path).close()
    RunLog(db_path).close()
    assert migrations(db_path) == [*SHIPPED, "900_extra", "901_extra_row"]
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM extra").fetchone()[0] == 1


def test_default_path_is_under_minsky_home(minsky_home: Path) -> None:
    log = RunLog()
    try:
        assert log.path == minsky_home / "logs.db"
        assert log.path.is_file()
    finally:
        log.close()


# -- writing and reading -------------------------------------------------------------------


def test_list_runs_newest_first(log: RunLog) -> None:
    ids = ["01A", "01B", "01C", "01D"]
    for run_id in ids:
        start(log, run_id, question=f"question {run_id}")
    runs = log.list_runs()
    assert [r["id"] for r in runs] == ids[::-1]
    assert runs[0]["question"] == "question 01D"
    assert runs[0]["status"] == "running"
    assert [r["id"] for r in log.list_runs(limit=2)] == ["01D", "01C"]


def test_list_runs_of_an_empty_log(log: RunLog) -> None:
    assert log.list_runs() == []


def test_get_run_of_a_missing_id_names_it(log: RunLog) -> None:
    start(log, "01HERE")
    with pytest.raises(MinskyError) as err:
        log.get_run("01NOT-THERE")
    assert "01NOT-THERE" in str(err.value)
    assert str(log.path) in str(err.value)


def test_a_whole_run_round_trips(log: RunLog) -> None:
    start(log, "R")
    log.start_round("R", 1, "answer")
    c0 = add_call(log, "R", idx=0, agent="a", text="The answer is 5.")
    c1 = add_call(log, "R", idx=1, agent="b", text="", finish="error")
    log.event("R", 1, "budget", {"status": "max_rounds", "nested": [1, 2]})
    log.finish_run("R", "ok", "5", {"answer": "5"}, Usage(10, 4), 1.5)
    run = log.get_run("R")
    assert run["status"] == "ok"
    assert run["answer"] == "5"
    assert run["outcome"] == {"answer": "5"}
    assert run["society"] == "vote3"
    assert run["society_config"] == {"name": "vote3"}
    assert run["models"] == {"m": "scripted"}
    assert (run["prompt_tokens"], run["completion_tokens"], run["wall_s"]) == (10, 4, 1.5)
    assert run["finished_at"] is not None and run["finished_at"] >= run["created_at"]
    assert [(r["round"], r["label"]) for r in run["rounds"]] == [(1, "answer")]
    assert [c["id"] for c in run["calls"]] == [c0, c1]
    call = run["calls"][0]
    assert call["request"] == request().to_dict()
    assert call["request_hash"] == request_hash("a", request(), "m")
    assert (call["prompt_tokens"], call["completion_tokens"], call["cached_tokens"]) == (3, 1, 2)
    assert call["latency_s"] == 0.25 and call["replayed"] == 0
    assert run["calls"][1]["error"] == "boom"
    assert run["calls"][1]["finish_reason"] == "error"
    assert [(m["call_id"], m["role"]) for m in run["messages"]] == [
        (c0, "system"), (c0, "user"), (c0, "assistant"),
        (c1, "system"), (c1, "user"), (c1, "assistant"),
    ]
    assert run["messages"][2]["content"] == "The answer is 5."
    assert run["events"] == [
        {"round": 1, "kind": "budget", "data": {"status": "max_rounds", "nested": [1, 2]}}
    ]


def test_unfinished_run_has_no_outcome(log: RunLog) -> None:
    start(log, "R")
    run = log.get_run("R")
    assert run["outcome"] is None
    assert run["finished_at"] is None
    assert run["calls"] == [] and run["messages"] == [] and run["events"] == []


def test_calls_are_ordered_by_round_then_index(log: RunLog) -> None:
    start(log, "R")
    add_call(log, "R", round_no=2, idx=0, agent="late")
    add_call(log, "R", round_no=1, idx=1, agent="second")
    add_call(log, "R", round_no=1, idx=0, agent="first")
    assert [c["agent"] for c in log.get_run("R")["calls"]] == ["first", "second", "late"]


def test_replayed_flag_is_stored(log: RunLog) -> None:
    start(log, "R")
    log.log_call("R", 1, 0, "a", "m", "answer", "s", request(), ChatReply("x"), replayed=True)
    assert log.get_run("R")["calls"][0]["replayed"] == 1


def test_runs_are_kept_apart(log: RunLog) -> None:
    start(log, "R1")
    start(log, "R2")
    add_call(log, "R1")
    add_call(log, "R2", text="other")
    assert [c["text"] for c in log.get_run("R1")["calls"]] == ["5"]
    assert len(log.get_run("R2")["messages"]) == 3


def test_writes_are_visible_to_another_connection_at_once(log: RunLog) -> None:
    start(log, "R")
    add_call(log, "R")
    other = RunLog(log.path)
    try:
        assert len(other.get_run("R")["calls"]) == 1
    finally:
        other.close()


# -- restart and resume --------------------------------------------------------------------


def test_restart_run_clears_calls_rounds_messages_and_events(log: RunLog) -> None:
    start(log, "R")
    start(log, "KEEP")
    log.start_round("R", 1, "answer")
    add_call(log, "R")
    add_call(log, "KEEP")
    log.event("R", 1, "error", {})
    log.finish_run("R", "error", None, {}, Usage(), 0.1)
    log.restart_run("R")
    run = log.get_run("R")
    assert run["calls"] == [] and run["messages"] == []
    assert run["rounds"] == [] and run["events"] == []
    assert run["status"] == "running"
    assert run["question"] == "q?"
    assert len(log.get_run("KEEP")["calls"]) == 1
    log.start_round("R", 1, "answer")  # the round number can be used again


def test_replies_for_resume_groups_by_hash_in_order_and_skips_errors(log: RunLog) -> None:
    start(log, "R")
    add_call(log, "R", idx=0, agent="a", text="first")
    add_call(log, "R", idx=1, agent="a", text="second")  # identical request: same hash
    add_call(log, "R", idx=2, agent="b", text="", finish="error")
    add_call(log, "R", idx=3, agent="c", text="cut", finish="length")
    found = log.replies_for_resume("R")
    assert set(found) == {request_hash("a", request(), "m"), request_hash("c", request(), "m")}
    replies = list(found[request_hash("a", request(), "m")])
    assert [r.text for r in replies] == ["first", "second"]
    assert replies[0].usage == Usage(3, 1, 2)
    assert replies[0].latency_s == 0.25
    assert found[request_hash("c", request(), "m")][0].finish_reason == "length"


def test_replies_for_resume_of_a_missing_run(log: RunLog) -> None:
    with pytest.raises(MinskyError, match="GONE"):
        log.replies_for_resume("GONE")


# -- request hashes ------------------------------------------------------------------------


def test_request_hash_is_stable() -> None:
    h = request_hash("solver-1", request(temperature=0.7, seed=3))
    assert h == request_hash("solver-1", request(temperature=0.7, seed=3))
    assert len(h) == 64 and int(h, 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        ("solver-2", request(temperature=0.7, seed=3)),
        ("solver-1", request(temperature=0.8, seed=3)),
        ("solver-1", request(temperature=0.7, seed=4)),
        ("solver-1", request(temperature=0.7, seed=3, max_tokens=20)),
        ("solver-1", request(temperature=0.7, seed=3, stop=["\n"])),
        ("solver-1", request(temperature=0.7, seed=3, grammar='root ::= "A"')),
        ("solver-1", request("What is 2+4?", temperature=0.7, seed=3)),
        ("solver-1", request(system="You are other.", temperature=0.7, seed=3)),
    ],
    ids=["agent", "temperature", "seed", "max_tokens", "stop", "grammar", "user", "system"],
)
def test_request_hash_is_sensitive_to_agent_options_and_content(
    other: tuple[str, ChatRequest],
) -> None:
    base = request_hash("solver-1", request(temperature=0.7, seed=3))
    assert request_hash(*other) != base


def test_request_hash_tells_message_roles_apart() -> None:
    a = ChatRequest([Message("user", "x"), Message("assistant", "y")])
    b = ChatRequest([Message("assistant", "x"), Message("user", "y")])
    assert request_hash("a", a) != request_hash("a", b)


def test_a_failed_migration_leaves_no_trace(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunLog(db_path).close()
    broken = ("900_extra", "CREATE TABLE extra (x INTEGER); CREATE TABLE oops (")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(MinskyError, match="run log .*: incomplete input"):
        RunLog(db_path)
    fixed = ("900_extra", "CREATE TABLE extra (x INTEGER); CREATE TABLE oops (y INTEGER);")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS[:-1], fixed])
    RunLog(db_path).close()  # the corrected migration applies cleanly
    assert migrations(db_path) == [*SHIPPED, "900_extra"]


def test_logprobs_are_logged_and_given_back_on_resume(log: RunLog) -> None:
    start(log, "R")
    reply = ChatReply("B", Usage(3, 1, 0), 0.1, "stop", logprobs=[-0.25],
                      top_logprobs=[{" B": -0.25, " A": -1.5}])
    log.log_call("R", 1, 0, "a", "m", "score", "scripted", request(logprobs=True), reply)
    add_call(log, "R", idx=1, agent="b")
    found = log.replies_for_resume("R")
    back = found[request_hash("a", request(logprobs=True), "m")][0]
    assert back.logprobs == [-0.25] and back.top_logprobs == [{" B": -0.25, " A": -1.5}]
    plain = found[request_hash("b", request(), "m")][0]
    assert plain.logprobs is None and plain.top_logprobs is None
    calls = log.get_run("R")["calls"]
    assert calls[0]["logprobs"] == {"logprobs": [-0.25],
                                    "top_logprobs": [{" B": -0.25, " A": -1.5}]}
    assert calls[1]["logprobs"] is None


def test_options_added_later_leave_old_request_hashes_alone() -> None:
    # a run logged before min_p, repeat_penalty and the log-prob options existed must
    # still find its replies: at their defaults they are not part of the hash
    assert "min_p" not in request(temperature=0.7).to_dict()["options"]
    assert "min_p" in request(min_p=0.1).to_dict()["options"]
    assert request_hash("a", request(logprobs=True)) != request_hash("a", request())
