"""The run log: every run, round, message, backend call and outcome, in SQLite.

Written as the run goes (each call is committed when it returns), so a crash or Ctrl-C
loses nothing already computed, and `minsky ask --resume RUN_ID` can replay the logged
replies instead of asking the model again. Ids are ULIDs, so they sort by time. The
schema evolves through named migrations, applied once each, in order, under a write lock
(several processes may open a fresh log at once). Text is made valid UTF-8 before it is
written. Each run records the process that runs it, so a run whose process died without
finishing it (kill -9, a crash) reads as `interrupted`, not as `running` for ever.

A run is resumed by one process at a time: resuming takes an exclusive lock on
`logs.db.locks/RUN_ID.lock` (`minsky.runlock`), and refuses a run whose own process still
runs it; the lock is held until the resumed run finishes or its process ends. A top run
records the resolved path of its society file, so a resume from another folder finds the
societies it nests. A log that cannot be written (a read-only home) is still readable:
`reader` opens it read-only. Times are stored as epoch seconds; what is read back has
each beside the same instant in ISO 8601 UTC (`created_at` and `created_at_iso`). All
SQL against the log is here: the viewer, the trace replay and the scripts read through
`RunLog`'s methods.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ulid import ULID

from minsky.errors import MinskyError
from minsky.inputs.safetext import valid
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.paths import log_path
from minsky.runlock import HOST, ResumeLocks, alive

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, created_at REAL NOT NULL, finished_at REAL,
            society TEXT NOT NULL, society_json TEXT NOT NULL, question TEXT NOT NULL,
            kind TEXT NOT NULL, models_json TEXT NOT NULL, status TEXT NOT NULL,
            answer TEXT, outcome_json TEXT, prompt_tokens INTEGER DEFAULT 0,
            completion_tokens INTEGER DEFAULT 0, wall_s REAL
        );
        CREATE TABLE rounds (
            run_id TEXT NOT NULL REFERENCES runs(id), round INTEGER NOT NULL,
            label TEXT NOT NULL, started_at REAL NOT NULL, PRIMARY KEY (run_id, round)
        );
        CREATE TABLE calls (
            id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
            round INTEGER NOT NULL, idx INTEGER NOT NULL, agent TEXT NOT NULL,
            purpose TEXT NOT NULL, backend TEXT NOT NULL, request_json TEXT NOT NULL,
            request_hash TEXT NOT NULL, text TEXT NOT NULL, finish_reason TEXT NOT NULL,
            error TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL, latency_s REAL NOT NULL,
            replayed INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL
        );
        CREATE INDEX calls_run ON calls(run_id, round, idx);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
            call_id TEXT NOT NULL REFERENCES calls(id), round INTEGER NOT NULL,
            agent TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL
        );
        CREATE INDEX messages_run ON messages(run_id, id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
            round INTEGER, kind TEXT NOT NULL, data_json TEXT NOT NULL, created_at REAL NOT NULL
        );
        """,
    ),
    (
        "002_parent_runs",
        # a society that is a member of another runs as a run of its own, linked here
        "ALTER TABLE runs ADD COLUMN parent_id TEXT REFERENCES runs(id);",
    ),
    (
        "003_tool_calls",
        """
        CREATE TABLE tool_calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
            call_id TEXT NOT NULL REFERENCES calls(id), agent TEXT NOT NULL,
            tool TEXT NOT NULL, input TEXT NOT NULL, result TEXT NOT NULL,
            error INTEGER NOT NULL, latency_s REAL NOT NULL
        );
        CREATE INDEX tool_calls_run ON tool_calls(run_id, id);
        """,
    ),
    (
        "004_call_logprobs",
        # token log-probabilities of a reply, where they were asked for: confidence-weighted
        # votes and option scoring read them, so a resumed run must get them back
        "ALTER TABLE calls ADD COLUMN logprobs_json TEXT;",
    ),
    (
        "005_run_process",
        # which process runs a run: one whose process is gone never finishes it
        "ALTER TABLE runs ADD COLUMN pid INTEGER; ALTER TABLE runs ADD COLUMN host TEXT;",
    ),
    (
        "006_run_source",
        # where a top run's society file was (resolved): a resume from another folder
        # must find the society files it nests, which are named relative to it
        "ALTER TABLE runs ADD COLUMN source TEXT;",
    ),
    (
        "007_tree_indexes",
        # a resume finds a run's sub-runs by parent, and clears their events: without these
        # each of tens of thousands of sub-runs scanned the whole table, twice
        """
        CREATE INDEX runs_parent ON runs(parent_id);
        CREATE INDEX events_run ON events(run_id, id);
        """,
    ),
    (
        "008_call_child",
        # the sub-society run a call delegated to, as a column a reader queries (before,
        # only the backend's text "society:NAME run ID" named it); old rows get theirs
        # from that text. No foreign key: a call still shows when its sub-run is gone.
        """
        ALTER TABLE calls ADD COLUMN child_id TEXT;
        UPDATE calls SET child_id = substr(backend, -26)
            WHERE substr(backend, 1, 8) = 'society:' AND substr(backend, -31, 5) = ' run ';
        """,
    ),
    (
        "009_scores",
        # scoring calls (token log-probabilities of a given text: Toolformer annotation,
        # the contamination test), logged like chat calls and replayed on resume
        """
        CREATE TABLE scores (
            id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
            round INTEGER NOT NULL, idx INTEGER NOT NULL, agent TEXT NOT NULL,
            purpose TEXT NOT NULL, backend TEXT NOT NULL, context TEXT NOT NULL,
            continuation TEXT NOT NULL, probes_json TEXT NOT NULL, request_hash TEXT NOT NULL,
            total REAL NOT NULL, scored_json TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL, latency_s REAL NOT NULL,
            replayed INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL
        );
        CREATE INDEX scores_run ON scores(run_id, round, idx);
        """,
    ),
]
# a run and every run nested under it (its sub-societies, the societies its tools asked):
# one indexed query whatever the size of the tree, and no list of ids that could
# outgrow SQLite's limit on parameters
_FAMILY = ("WITH RECURSIVE family(id) AS (SELECT ? UNION "
           "SELECT runs.id FROM runs JOIN family ON runs.parent_id = family.id) ")
# how long a process waits for another's write lock (SQLite's busy handler) before failing
BUSY_TIMEOUT_S = 30.0


def _valid(params: tuple[Any, ...]) -> tuple[Any, ...]:
    """Parameters with every str made valid UTF-8: SQLite refuses lone surrogates."""
    return tuple(valid(p) if isinstance(p, str) else p for p in params)


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration, one by one (executescript would commit)."""
    out, current = [], ""
    for char in script:
        current += char
        if char == ";" and sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())  # an unfinished statement fails when it is run
    return out


def request_hash(agent: str, request: ChatRequest, model: str = "") -> str:
    """A stable hash of who (on which model) was asked what, to find a reply on resume."""
    canonical = json.dumps({"agent": agent, "model": model, **request.to_dict()},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _logprobs_json(reply: ChatReply) -> str | None:
    if reply.logprobs is None and reply.top_logprobs is None:
        return None
    return json.dumps({"logprobs": reply.logprobs, "top_logprobs": reply.top_logprobs})


class RunLog:
    """The SQLite run log (by default `$MINSKY_HOME/logs.db`)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else log_path()
        self.locks = ResumeLocks(self.path)
        try:
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                      check_same_thread=False, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._set_wal()
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as err:
            raise MinskyError(f"run log {self.path}: {err} (--no-log runs without it)") from None
        # writes commit through `with self.db`, as in the default transaction mode
        self.db.isolation_level = "DEFERRED"

    def _set_wal(self) -> None:
        # subtle: switching the journal mode takes an exclusive lock that the busy handler
        # does not always wait for, so a process racing another on a fresh file retries
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @classmethod
    def read_only(cls, path: Path | str) -> RunLog:
        """An existing log opened for reading only (SQLite URI `mode=ro`): no migrations,
        and any attempt to write fails in SQLite itself. In a folder that cannot be
        written, where SQLite cannot make the WAL index a reader needs, it is opened as
        immutable: no process can be writing to it there."""
        path = Path(path)
        if not path.is_file():
            raise MinskyError(f"no run log at {path}")
        log = cls.__new__(cls)
        log.path, log.locks = path, ResumeLocks(path)
        uri = path.resolve().as_uri()
        try:
            log.db = _probed(f"{uri}?mode=ro")
        except sqlite3.OperationalError as err:
            if _writable(path.parent):
                raise MinskyError(f"run log {path}: {err}") from None
            try:
                log.db = _probed(f"{uri}?mode=ro&immutable=1")
            except sqlite3.Error as err2:
                raise MinskyError(f"run log {path}: {err2}") from None
        log.db.row_factory = sqlite3.Row
        return log

    @classmethod
    def reader(cls, path: Path | str | None = None) -> RunLog:
        """The log for a command that only reads it: read-only where the log or its
        folder cannot be written (a read-only home), else opened as usual (migrated).
        A `path` that names no file is an error, not a new empty log."""
        target = Path(path) if path else log_path()
        if path is not None or (target.exists() and not (
                _writable(target) and _writable(target.parent))):
            return cls.read_only(target)
        return cls(target)

    def _migrate(self) -> None:
        names = [name for name, _ in MIGRATIONS]
        try:
            done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
            if all(n in done for n in names):
                return  # the common case: no write lock needed
        except sqlite3.OperationalError:
            pass  # a fresh file
        # BEGIN IMMEDIATE takes the write lock before reading what is applied, so two
        # processes never both apply a migration; all of them commit together, or none
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
            for name, sql in MIGRATIONS:
                if name not in done:
                    for statement in _statements(sql):
                        self.db.execute(statement)
                    self.db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.locks.release_all()
        self.db.close()

    def claim(self, run_id: str) -> None:
        """Take run `run_id` for resuming, or stop with one line: another resume of it
        holds its lock, or the process that runs it is still alive. The lock is held
        until the run finishes (`finish_run`), the log is closed or the process ends."""
        if run_id in self.locks.held:
            return
        self.locks.take(run_id)
        row = self.db.execute("SELECT status, pid, host FROM runs WHERE id = ?",
                              (run_id,)).fetchone()
        if (row is not None and row["status"] == "running" and row["host"] == HOST
                and row["pid"] not in (None, os.getpid()) and alive(row["pid"])):
            self.locks.release(run_id)
            raise MinskyError(f"run {run_id} is still running (process {row['pid']}); "
                              "resume it once that process has ended")

    # -- writing -----------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        society: str,
        society_json: dict[str, Any],
        question: str,
        kind: str,
        models: dict[str, str],
        parent_id: str | None = None,
    ) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs (id, created_at, society, society_json, question, kind, "
                "models_json, status, parent_id, pid, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                _valid((run_id, time.time(), society, json.dumps(society_json), question, kind,
                        json.dumps(models), parent_id, os.getpid(), HOST)),
            )

    def record_source(self, run_id: str, source: str) -> None:
        """Where run `run_id`'s society came from: a file's resolved path, else as given."""
        path = Path(source)
        if not source.startswith(("builtin:", "run ")) and path.is_file():
            source = str(path.resolve())
        with self.db:
            self.db.execute("UPDATE runs SET source = ? WHERE id = ?", _valid((source, run_id)))

    def restart_run(self, run_id: str) -> None:
        """Clear a run (and its sub-society runs) before it is resumed and re-logged: a
        handful of statements, however many sub-runs it had."""
        with self.db:
            for table in ("tool_calls", "messages", "events", "calls", "scores", "rounds"):
                self.db.execute(f"{_FAMILY}DELETE FROM {table} "  # noqa: S608
                                "WHERE run_id IN (SELECT id FROM family)", (run_id,))
            self.db.execute(f"{_FAMILY}DELETE FROM runs WHERE id IN (SELECT id FROM family) "
                            "AND id != ?", (run_id, run_id))
            self.db.execute("UPDATE runs SET status = 'running', pid = ?, host = ? WHERE id = ?",
                            (os.getpid(), HOST, run_id))

    def start_round(self, run_id: str, round_no: int, label: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO rounds VALUES (?, ?, ?, ?)",
                _valid((run_id, round_no, label, time.time())),
            )

    def log_call(
        self,
        run_id: str,
        round_no: int,
        idx: int,
        agent: str,
        model: str,
        purpose: str,
        backend: str,
        request: ChatRequest,
        reply: ChatReply,
        replayed: bool = False,
        child: str | None = None,
    ) -> str:
        """One call and its messages; `child`: the sub-society run that answered it."""
        call_id = str(ULID())
        u = reply.usage
        with self.db:
            self.db.execute(
                "INSERT INTO calls (id, run_id, round, idx, agent, purpose, backend, "
                "request_json, request_hash, text, finish_reason, error, prompt_tokens, "
                "completion_tokens, cached_tokens, latency_s, replayed, created_at, "
                "logprobs_json, child_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _valid((call_id, run_id, round_no, idx, agent, purpose, backend,
                        json.dumps(request.to_dict()), request_hash(agent, request, model),
                        reply.text, reply.finish_reason, reply.error, u.prompt_tokens,
                        u.completion_tokens, u.cached_tokens, reply.latency_s, int(replayed),
                        time.time(), _logprobs_json(reply), child)),
            )
            rows = [(m.role, m.content) for m in request.messages] + [("assistant", reply.text)]
            self.db.executemany(
                "INSERT INTO messages (run_id, call_id, round, agent, role, content) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [_valid((run_id, call_id, round_no, agent, role, content))
                 for role, content in rows],
            )
        return call_id

    def log_tool_calls(self, run_id: str, call_id: str, agent: str, calls: list[Any]) -> None:
        """The tool calls one reply made (tools.calls.ToolCall records)."""
        with self.db:
            self.db.executemany(
                "INSERT INTO tool_calls (run_id, call_id, agent, tool, input, result, error, "
                "latency_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_valid((run_id, call_id, agent, c.tool, c.input, c.result, int(c.error),
                         c.latency_s)) for c in calls],
            )

    def event(self, run_id: str, round_no: int | None, kind: str, data: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO events (run_id, round, kind, data_json, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, round_no, kind, json.dumps(data), time.time()),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        answer: str | None,
        outcome: dict[str, Any],
        usage: Usage,
        wall_s: float,
    ) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET status=?, answer=?, outcome_json=?, prompt_tokens=?, "
                "completion_tokens=?, wall_s=?, finished_at=? WHERE id=?",
                _valid((status, answer, json.dumps(outcome), usage.prompt_tokens,
                        usage.completion_tokens, wall_s, time.time(), run_id)),
            )
        self.locks.release(run_id)

    # -- reading -----------------------------------------------------------------------

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, created_at, society, question, status, answer, prompt_tokens, "
            "completion_tokens, wall_s, parent_id, pid, host FROM runs ORDER BY id DESC "
            "LIMIT ?",
            (limit,),
        )
        return [_settled(dict(r)) for r in rows]

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A whole run: its record, rounds, calls, messages and events."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise MinskyError(f"run {run_id!r} is not in the log {self.path}")
        run = _settled(dict(row))
        for key, new in (("society_json", "society_config"), ("models_json", "models"),
                         ("outcome_json", "outcome")):
            raw = run.pop(key)
            run[new] = json.loads(raw) if raw else None

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in self.db.execute(sql, (run_id,))]

        run["children"] = rows("SELECT id, society, status, answer FROM runs WHERE parent_id=? "
                               "ORDER BY id")
        run["rounds"] = [_with_iso(r, "started_at") for r in rows(
            "SELECT round, label, started_at FROM rounds WHERE run_id=? ORDER BY round")]
        calls = rows("SELECT * FROM calls WHERE run_id=? ORDER BY round, idx")
        for call in calls:
            call["request"] = json.loads(call.pop("request_json"))
            raw = call.pop("logprobs_json", None)
            call["logprobs"] = json.loads(raw) if raw else None
            if "child_id" not in call:  # a log read-only from before 008_call_child
                call["child_id"] = _child_of(call["backend"])
        run["calls"] = [_with_iso(c, "created_at") for c in calls]
        run["messages"] = rows(
            "SELECT call_id, round, agent, role, content FROM messages WHERE run_id=? ORDER BY id"
        )
        run["tool_calls"] = rows(
            "SELECT call_id, agent, tool, input, result, error, latency_s FROM tool_calls "
            "WHERE run_id=? ORDER BY id"
        )
        run["scores"] = [_with_iso(s, "created_at") for s in logged_scores(self.db, run_id)]
        events = rows("SELECT round, kind, data_json FROM events WHERE run_id=? ORDER BY id")
        run["events"] = [
            {"round": e["round"], "kind": e["kind"], "data": json.loads(e["data_json"])}
            for e in events
        ]
        return run

    def replies_for_resume(self, run_id: str) -> dict[str, deque[ChatReply]]:
        """Logged replies of a run and its sub-society runs by request hash, in order.
        The run is claimed for this resume first (`claim`): a second resume stops here."""
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise MinskyError(f"run {run_id!r} is not in the log {self.path}")
        self.claim(run_id)
        found: dict[str, deque[ChatReply]] = defaultdict(deque)
        calls = self.db.execute(
            f"{_FAMILY}SELECT * FROM calls WHERE run_id IN (SELECT id FROM family) ORDER BY id",
            (run_id,))
        for c in calls:
            if c["finish_reason"] == "error":
                continue  # a failed call is worth trying again
            usage = Usage(c["prompt_tokens"], c["completion_tokens"], c["cached_tokens"])
            reply = ChatReply(c["text"], usage, c["latency_s"], c["finish_reason"])
            if c["logprobs_json"]:
                probs = json.loads(c["logprobs_json"])
                reply.logprobs, reply.top_logprobs = probs["logprobs"], probs["top_logprobs"]
            found[c["request_hash"]].append(reply)
        return found

    # -- reading for the viewer, the trace replay and the scripts ------------------------

    def missing_migrations(self) -> list[str] | None:
        """The shipped migrations this log has not had (None: not a minsky run log)."""
        try:
            done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
        except sqlite3.DatabaseError:
            return None
        return [name for name, _ in MIGRATIONS if name not in done]

    def find_runs(self, society: str = "", status: str = "", text: str = "",
                  top: bool = False, parent: str = "", limit: int = 50,
                  offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """The runs that match every filter given (`text`: in the question, the answer or
        a member's reply), newest first: how many in all, and `limit` of them from
        `offset`, each with `children`, how many sub-society runs it has."""
        where, args = [], []
        if society:
            where.append("society = ?")
            args.append(society)
        if status:
            where.append("status = ?")
            args.append(status)
        if text:
            # the members' replies too: a word a member said finds its run
            where.append("(question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\' OR id IN "
                         "(SELECT run_id FROM calls WHERE text LIKE ? ESCAPE '\\'))")
            args += [_like(text)] * 3
        if top:
            where.append("parent_id IS NULL")
        if parent:
            where.append("parent_id = ?")
            args.append(parent)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        total = self.db.execute(f"SELECT count(*) FROM runs {clause}", args).fetchone()[0]  # noqa: S608
        rows = [dict(r) for r in self.db.execute(
            "SELECT id, created_at, society, question, status, answer, prompt_tokens, "
            f"completion_tokens, wall_s, parent_id FROM runs {clause} "  # noqa: S608
            "ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset])]
        children: dict[str, int] = {}
        if ids := [r["id"] for r in rows]:
            marks = ",".join("?" * len(ids))
            children = dict(self.db.execute(
                f"SELECT parent_id, count(*) FROM runs WHERE parent_id IN ({marks}) "  # noqa: S608
                "GROUP BY parent_id", ids).fetchall())
        for r in rows:
            r["children"] = children.get(r["id"], 0)
        return total, rows

    def distinct(self, column: str) -> list[str]:
        """The values of a run's `society` or `status` in the log, sorted."""
        if column not in ("society", "status"):
            raise ValueError(f"not a column to list: {column!r}")
        return [r[0] for r in self.db.execute(
            f"SELECT DISTINCT {column} FROM runs ORDER BY {column}")]  # noqa: S608

    def known(self, ids: list[str]) -> set[str]:
        """Which of these run ids are in the log (a results file may name another's)."""
        return {r[0] for r in self._by_id("id", ids)}

    def questions(self, ids: list[str]) -> dict[str, str]:
        """Run id → its question, for those of `ids` in the log."""
        return {r[0]: r[1] for r in self._by_id("id, question", ids)}

    def _by_id(self, columns: str, ids: list[str]) -> list[sqlite3.Row]:
        found: list[sqlite3.Row] = []
        ids = [i for i in ids if i]
        for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
            chunk = ids[start:start + 500]
            found += self.db.execute(f"SELECT {columns} FROM runs "  # noqa: S608
                                     f"WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return found

    def run_ids(self, top: bool = False, newest_first: bool = False) -> list[str]:
        """Every run's id (`top`: only runs that are not a sub-society's), in time order."""
        sql = "SELECT id FROM runs" + (" WHERE parent_id IS NULL" if top else "")
        return [r[0] for r in self.db.execute(sql + " ORDER BY id" +
                                              (" DESC" if newest_first else ""))]

    def notes(self, run_id: str) -> list[dict[str, Any]]:
        """A run's events (budget stops, errors, ledger entries…) in order, with the time
        each was logged (`created_at`)."""
        return [{"round": e["round"], "kind": e["kind"], "data": json.loads(e["data_json"]),
                 "created_at": e["created_at"]} for e in self.db.execute(
            "SELECT round, kind, data_json, created_at FROM events WHERE run_id = ? "
            "ORDER BY id", (run_id,))]

    def outcome(self, run_id: str) -> dict[str, Any] | None:
        """A run's outcome as logged (None: not finished, or not in the log)."""
        row = self.db.execute("SELECT outcome_json FROM runs WHERE id = ?",
                              (run_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def counts(self, run_id: str) -> dict[str, int]:
        """How many calls and tool calls (and of those, failed) run `run_id` logged:
        none for a run not in the log."""
        calls = self.db.execute("SELECT count(*) FROM calls WHERE run_id = ?",
                                (run_id,)).fetchone()[0]
        tools, errors = self.db.execute(
            "SELECT count(*), coalesce(sum(error), 0) FROM tool_calls WHERE run_id = ?",
            (run_id,)).fetchone()
        return {"calls": calls, "tool_calls": tools, "tool_errors": errors}

    def unsynced(self) -> None:
        """Commit without waiting for the disk: for a throwaway log (a benchmark's)."""
        self.db.execute("PRAGMA synchronous=OFF")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _child_of(backend: str) -> str | None:
    """The sub-society run a call's backend text names ("society:NAME run ID"), as
    migration 008_call_child reads it."""
    if backend.startswith("society:") and backend[-31:-26] == " run ":
        return backend[-26:]
    return None


def _probed(uri: str) -> sqlite3.Connection:
    """A connection to `uri` that has read the schema: SQLite opens files lazily."""
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _settled(run: dict[str, Any]) -> dict[str, Any]:
    """A logged run as it stands: `running` whose process on this host is gone (killed
    before it could log its end) reads `interrupted`; resuming it works as for any other.
    A run on another host cannot be checked from here and is left as logged."""
    pid, host = run.pop("pid", None), run.pop("host", None)
    if run["status"] == "running" and pid is not None and host == HOST and not alive(pid):
        run["status"] = "interrupted"
    if run.get("wall_s") is not None:
        run["wall_s"] = round(run["wall_s"], 3)  # as a run's result and results rows give it
    return _with_iso(run, "created_at", "finished_at")


def with_run_id(run: dict[str, Any]) -> dict[str, Any]:
    """A logged run with its id as `run_id`, as every command and page calls it (`id`
    stays, for the scripts that read it)."""
    return {"run_id": run["id"], **run}


def _with_iso(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`row` with `KEY_iso` after each epoch time `KEY` it has: the instant in ISO 8601
    UTC to the millisecond (None where the time is), so a reader of `logs show --json`
    need not convert seconds since 1970."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value
        if key in keys:
            out[f"{key}_iso"] = None if value is None else datetime.fromtimestamp(
                value, UTC).isoformat(timespec="milliseconds")
    return out


def logged_scores(db: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """Run `run_id`'s scoring calls in order, as `logs show` gives them (none in a log
    written before scoring calls were logged)."""
    try:
        rows = db.execute("SELECT * FROM scores WHERE run_id=? ORDER BY round, idx, id",
                          (run_id,)).fetchall()
    except sqlite3.OperationalError:
        return []  # an older log opened read-only: no `scores` table
    out = []
    for row in rows:
        found = dict(row)
        found["probes"] = json.loads(found.pop("probes_json"))
        found["scored"] = json.loads(found.pop("scored_json"))
        out.append(found)
    return out


__all__ = ["RunLog", "request_hash", "with_run_id"]
