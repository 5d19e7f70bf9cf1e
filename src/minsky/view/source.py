"""What the viewer reads from the run log: a filtered page of runs, a run with its family.

The log is opened read-only (SQLite `mode=ro`), one connection per request, so the
server's threads never share a cursor. Whole runs come from `RunLog.get_run`, the same
reader `minsky logs show` uses; the filtered, paged list from `RunLog.find_runs` (the
log's SQL is all in `minsky.runlog`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field

from minsky.errors import MinskyError
from minsky.runlog import RunLog
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


READ_AS_IS = ("008_call_child", "009_scores")


def open_log(path: Path) -> RunLog:
    """The log at `path`, read-only; a clear error for a missing or too old log."""
    log = RunLog.read_only(path)
    missing = log.missing_migrations()
    if missing is None:
        log.close()
        raise MinskyError(f"{path} is not a minsky run log")
    # the readers take a log from before these as it is (links read off the backend
    # text, no scores), so an upgrade does not lock the viewer out of an existing log
    missing = [m for m in missing if m not in READ_AS_IS]
    if missing:
        log.close()
        # the viewer never writes, so it cannot migrate; any logging command does
        raise MinskyError(f"run log {path} predates this minsky (missing {missing[0]}); "
                          "run any minsky command that logs, then view it again")
    return log


def list_runs(log: RunLog, query: RunQuery) -> dict[str, Any]:
    """One page of runs, newest first, with the filters applied and the totals."""
    total, rows = log.find_runs(query.society, query.status, query.q, query.top,
                                query.parent, query.per_page,
                                (query.page - 1) * query.per_page)
    return {"runs": rows, "total": total,
            "pages": max(1, -(-total // query.per_page))}


def choices(log: RunLog) -> dict[str, list[str]]:
    """The societies and statuses in the log, for the filter menus."""
    return {"societies": log.distinct("society"), "statuses": log.distinct("status")}


def known_runs(log: RunLog, ids: list[str]) -> set[str]:
    """Which of these run ids are in the log (a results file may name runs of another)."""
    return log.known(ids)


def questions(log: RunLog, ids: list[str]) -> dict[str, str]:
    """Run id → its question, for those of `ids` in the log."""
    return log.questions(ids)


def all_run_ids(log: RunLog) -> list[str]:
    return log.run_ids(newest_first=True)
