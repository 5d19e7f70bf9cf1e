"""A logged run as it is read back: its status as it stands, its times also in ISO 8601.

Rows come from the run log (`minsky.runlog`) as SQLite stores them; this shapes them for
`minsky logs`, the viewer and the traces: a `running` run whose process is gone reads
`interrupted`, and each epoch time has the same instant in ISO 8601 UTC beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minsky.runlock import HOST, alive


def settled(run: dict[str, Any]) -> dict[str, Any]:
    """A logged run as it stands: `running` whose process on this host is gone (killed
    before it could log its end) reads `interrupted`; resuming it works as for any other.
    A run on another host cannot be checked from here and is left as logged."""
    pid, host = run.pop("pid", None), run.pop("host", None)
    if run["status"] == "running" and pid is not None and host == HOST and not alive(pid):
        run["status"] = "interrupted"
    if run.get("wall_s") is not None:
        run["wall_s"] = round(run["wall_s"], 3)  # as a run's result and results rows give it
    return with_iso(run, "created_at", "finished_at")


def with_run_id(run: dict[str, Any]) -> dict[str, Any]:
    """A logged run with its id as `run_id`, as every command and page calls it (`id`
    stays, for the scripts that read it)."""
    return {"run_id": run["id"], **run}


def with_iso(row: dict[str, Any], *keys: str) -> dict[str, Any]:
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


__all__ = ["settled", "with_iso", "with_run_id"]
