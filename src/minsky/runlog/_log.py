"""The run log: every run, round, message, backend call and outcome, in SQLite.

This module opens the log and writes to it; `_schema` holds its tables and migrations,
`_readers` the read-side queries (`RunLog` inherits them), `_scores` the scoring calls and
`_lock` the resume locks. Each call is committed when it returns, so a crash or Ctrl-C
loses nothing already computed, and a resume replays the logged replies instead of asking
the model again (`replies_for_resume`). Each run records the process that runs it, so one
whose process died without finishing it reads as `interrupted`, not `running` for ever.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from ulid import ULID

from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.paths import log_path
from minsky.runlog._lock import HOST, ResumeLocks, alive
from minsky.runlog._readers import ReadQueries
from minsky.runlog._schema import BUSY_TIMEOUT_S, FAMILY, migrate, valid_params


def request_hash(agent: str, request: ChatRequest, model: str = "") -> str:
    """A stable hash of who (on which model) was asked what, to find a reply on resume."""
    canonical = json.dumps({"agent": agent, "model": model, **request.to_dict()},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _logprobs_json(reply: ChatReply) -> str | None:
    if reply.logprobs is None and reply.top_logprobs is None:
        return None
    return json.dumps({"logprobs": reply.logprobs, "top_logprobs": reply.top_logprobs})


class RunLog(ReadQueries):
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
            migrate(self.db)
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
                valid_params((run_id, time.time(), society, json.dumps(society_json), question,
                              kind, json.dumps(models), parent_id, os.getpid(), HOST)),
            )

    def record_source(self, run_id: str, source: str) -> None:
        """Where run `run_id`'s society came from: a file's resolved path, else as given."""
        path = Path(source)
        if not source.startswith(("builtin:", "run ")) and path.is_file():
            source = str(path.resolve())
        with self.db:
            self.db.execute("UPDATE runs SET source = ? WHERE id = ?",
                            valid_params((source, run_id)))

    def restart_run(self, run_id: str) -> None:
        """Clear a run (and its sub-society runs) before it is resumed and re-logged: a
        handful of statements, however many sub-runs it had."""
        with self.db:
            for table in ("tool_calls", "messages", "events", "calls", "scores", "rounds"):
                self.db.execute(f"{FAMILY}DELETE FROM {table} "  # noqa: S608
                                "WHERE run_id IN (SELECT id FROM family)", (run_id,))
            self.db.execute(f"{FAMILY}DELETE FROM runs WHERE id IN (SELECT id FROM family) "
                            "AND id != ?", (run_id, run_id))
            self.db.execute("UPDATE runs SET status = 'running', pid = ?, host = ? WHERE id = ?",
                            (os.getpid(), HOST, run_id))

    def start_round(self, run_id: str, round_no: int, label: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO rounds VALUES (?, ?, ?, ?)",
                valid_params((run_id, round_no, label, time.time())),
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
                valid_params((call_id, run_id, round_no, idx, agent, purpose, backend,
                              json.dumps(request.to_dict()), request_hash(agent, request, model),
                              reply.text, reply.finish_reason, reply.error, u.prompt_tokens,
                              u.completion_tokens, u.cached_tokens, reply.latency_s, int(replayed),
                              time.time(), _logprobs_json(reply), child)),
            )
            rows = [(m.role, m.content) for m in request.messages] + [("assistant", reply.text)]
            self.db.executemany(
                "INSERT INTO messages (run_id, call_id, round, agent, role, content) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [valid_params((run_id, call_id, round_no, agent, role, content))
                 for role, content in rows],
            )
        return call_id

    def log_tool_calls(self, run_id: str, call_id: str, agent: str, calls: list[Any]) -> None:
        """The tool calls one reply made (tools.calls.ToolCall records)."""
        with self.db:
            self.db.executemany(
                "INSERT INTO tool_calls (run_id, call_id, agent, tool, input, result, error, "
                "latency_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [valid_params((run_id, call_id, agent, c.tool, c.input, c.result, int(c.error),
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
                valid_params((status, answer, json.dumps(outcome), usage.prompt_tokens,
                              usage.completion_tokens, wall_s, time.time(), run_id)),
            )
        self.locks.release(run_id)

    # -- resuming ----------------------------------------------------------------------

    def replies_for_resume(self, run_id: str) -> dict[str, deque[ChatReply]]:
        """Logged replies of a run and its sub-society runs by request hash, in order.
        The run is claimed for this resume first (`claim`): a second resume stops here."""
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise MinskyError(f"run {run_id!r} is not in the log {self.path}")
        self.claim(run_id)
        found: dict[str, deque[ChatReply]] = defaultdict(deque)
        calls = self.db.execute(
            f"{FAMILY}SELECT * FROM calls WHERE run_id IN (SELECT id FROM family) ORDER BY id",
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

    def unsynced(self) -> None:
        """Commit without waiting for the disk: for a throwaway log (a benchmark's)."""
        self.db.execute("PRAGMA synchronous=OFF")


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


