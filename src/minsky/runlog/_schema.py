"""The run log's schema: its tables, the named migrations that build them, and how they
are applied.

Migrations are applied once each, in order, under a write lock: several processes may
open a fresh log at once, and `BEGIN IMMEDIATE` makes one of them apply what is missing
while the others wait, then find nothing to do. Text is made valid UTF-8 before it is
written (`valid_params`).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from minsky.inputs.safetext import valid

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
FAMILY = ("WITH RECURSIVE family(id) AS (SELECT ? UNION "
           "SELECT runs.id FROM runs JOIN family ON runs.parent_id = family.id) ")
# how long a process waits for another's write lock (SQLite's busy handler) before failing
BUSY_TIMEOUT_S = 30.0


def valid_params(params: tuple[Any, ...]) -> tuple[Any, ...]:
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


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations `db` has not had, all together or none (`db` in autocommit)."""
    names = [name for name, _ in MIGRATIONS]
    try:
        done = {r[0] for r in db.execute("SELECT name FROM migrations")}
        if all(n in done for n in names):
            return  # the common case: no write lock needed
    except sqlite3.OperationalError:
        pass  # a fresh file
    # BEGIN IMMEDIATE takes the write lock before reading what is applied, so two
    # processes never both apply a migration; all of them commit together, or none
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
        )
        done = {r[0] for r in db.execute("SELECT name FROM migrations")}
        for name, sql in MIGRATIONS:
            if name not in done:
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def missing(db: sqlite3.Connection) -> list[str] | None:
    """The shipped migrations `db` has not had (None: not a minsky run log)."""
    try:
        done = {r[0] for r in db.execute("SELECT name FROM migrations")}
    except sqlite3.DatabaseError:
        return None
    return [name for name, _ in MIGRATIONS if name not in done]
