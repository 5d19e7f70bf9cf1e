"""What the viewer reads from the run log: a filtered page of runs, a run with its family.

The log is opened read-only (SQLite `mode=ro`), one connection per request, so the
server's threads never share a cursor. Whole runs come from `RunLog.get_run`, the same
reader `minsky logs show` uses; only the filtered, paged list is a query of its own.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import Field

from minsky.errors import MinskyError
from minsky.runlog import MIGRATIONS, RunLog
from minsky.strict import Strict

RUN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID
MAX_DEPTH = 6  # sub-societies folded into a run page, at most (society.MAX_DEPTH is 4)
MAX_CALLS = 2000  # backend calls shown on one run page, its sub-runs' included


class RunQuery(Strict):
    """The runs list's filters and page, from the URL's query string."""

    society: str = Field("", max_length=200)
    status: str = Field("", max_length=40)
    q: str = Field("", max_length=200,
                   description="text in the question, the answer or a member's reply")
    top: bool = Field(False, description="only runs that are not a sub-society's")
    parent: str = Field("", pattern=r"^([0-9A-HJKMNP-TV-Z]{26})?$",
                        description="only the sub-society runs of this run")
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(50, ge=1, le=200)


def open_log(path: Path) -> RunLog:
    """The log at `path`, read-only; a clear error for a missing or too old log."""
    log = RunLog.read_only(path)
    try:
        done = {r[0] for r in log.db.execute("SELECT name FROM migrations")}
    except sqlite3.DatabaseError:
        log.close()
        raise MinskyError(f"{path} is not a minsky run log") from None
    missing = [name for name, _ in MIGRATIONS if name not in done]
    if missing:
        log.close()
        # the viewer never writes, so it cannot migrate; any logging command does
        raise MinskyError(f"run log {path} predates this minsky (missing {missing[0]}); "
                          "run any minsky command that logs, then view it again")
    return log


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_runs(log: RunLog, query: RunQuery) -> dict[str, Any]:
    """One page of runs, newest first, with the filters applied and the totals."""
    where, args = [], []
    if query.society:
        where.append("society = ?")
        args.append(query.society)
    if query.status:
        where.append("status = ?")
        args.append(query.status)
    if query.q:
        # the members' replies too: a word a member said finds its run
        where.append("(question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\' OR id IN "
                     "(SELECT run_id FROM calls WHERE text LIKE ? ESCAPE '\\'))")
        args += [_like(query.q)] * 3
    if query.top:
        where.append("parent_id IS NULL")
    if query.parent:
        where.append("parent_id = ?")
        args.append(query.parent)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    total = log.db.execute(f"SELECT count(*) FROM runs {clause}", args).fetchone()[0]  # noqa: S608
    rows = [dict(r) for r in log.db.execute(
        "SELECT id, created_at, society, question, status, answer, prompt_tokens, "
        f"completion_tokens, wall_s, parent_id FROM runs {clause} "  # noqa: S608
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        [*args, query.per_page, (query.page - 1) * query.per_page])]
    ids = [r["id"] for r in rows]
    children: dict[str, int] = {}
    if ids:
        marks = ",".join("?" * len(ids))
        children = dict(log.db.execute(
            f"SELECT parent_id, count(*) FROM runs WHERE parent_id IN ({marks}) "  # noqa: S608
            "GROUP BY parent_id", ids).fetchall())
    for r in rows:
        r["children"] = children.get(r["id"], 0)
    return {"runs": rows, "total": total,
            "pages": max(1, -(-total // query.per_page))}


def choices(log: RunLog) -> dict[str, list[str]]:
    """The societies and statuses in the log, for the filter menus."""
    def distinct(col: str) -> list[str]:
        return [r[0] for r in log.db.execute(
            f"SELECT DISTINCT {col} FROM runs ORDER BY {col}")]  # noqa: S608

    return {"societies": distinct("society"), "statuses": distinct("status")}


def known_runs(log: RunLog, ids: list[str]) -> set[str]:
    """Which of these run ids are in the log (a results file may name runs of another)."""
    found: set[str] = set()
    ids = [i for i in ids if i]
    for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in log.db.execute(
            f"SELECT id FROM runs WHERE id IN ({marks})", chunk))  # noqa: S608
    return found


def questions(log: RunLog, ids: list[str]) -> dict[str, str]:
    """Run id → its question, for those of `ids` in the log."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(log.db.execute(
            f"SELECT id, question FROM runs WHERE id IN ({marks})", chunk).fetchall())  # noqa: S608
    return found


def all_run_ids(log: RunLog) -> list[str]:
    return [r[0] for r in log.db.execute("SELECT id FROM runs ORDER BY id DESC")]
