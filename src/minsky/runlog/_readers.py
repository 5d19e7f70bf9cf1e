"""Reading the run log: a run as `logs show` gives it, and the queries behind the viewer,
the trace replay and the scripts.

A run is read back as it stands: `running` whose process on this host is gone reads
`interrupted` (`_settled`), and each epoch time has the same instant beside it in ISO 8601
UTC (`created_at` and `created_at_iso`). `ReadQueries` is the read side of `RunLog`, kept
apart so that each half reads top to bottom; it needs only the log's connection and path.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.runlog._lock import HOST, alive
from minsky.runlog._schema import missing


class ReadQueries:
    """The read-side queries of the run log at `path`, over its connection `db`."""

    path: Path
    db: sqlite3.Connection

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
        run["scores"] = [_with_iso(s, "created_at") for s in _logged_scores(self.db, run_id)]
        events = rows("SELECT round, kind, data_json FROM events WHERE run_id=? ORDER BY id")
        run["events"] = [
            {"round": e["round"], "kind": e["kind"], "data": json.loads(e["data_json"])}
            for e in events
        ]
        return run

    # -- reading for the viewer, the trace replay and the scripts ------------------------

    def missing_migrations(self) -> list[str] | None:
        """The shipped migrations this log has not had (None: not a minsky run log)."""
        return missing(self.db)

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


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _child_of(backend: str) -> str | None:
    """The sub-society run a call's backend text names ("society:NAME run ID"), as
    migration 008_call_child reads it."""
    if backend.startswith("society:") and backend[-31:-26] == " run ":
        return backend[-26:]
    return None



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


def _logged_scores(db: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
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
