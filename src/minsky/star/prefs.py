"""Preference pairs from the society's own judgements (RLAIF): DPO rows from the run log.

The text organisations (`drafts`, `critique`, and `consensus` on a free-text question)
keep what they decided as pairs in their outcome's detail: a pairwise judgement won in
both orders (winner chosen, loser rejected) and a revision asked by a critic (revision
chosen, the answer it revised rejected). This reads them back from the run log as DPO
rows in the shape `minsky star export --format dpo` and `minsky arena --export-pairs`
write (`prompt`, `chosen`, `rejected`, then provenance), so one trainer reads all three.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from minsky.runlog import RunLog
from minsky.star.rows import ChatTurn, DPORow

SOURCES = ("judgement", "revision")


def _row(pref: Any, run: dict[str, Any]) -> dict[str, Any] | None:
    """One DPO row from a logged preference, or None when it is malformed or empty."""
    if not isinstance(pref, dict) or pref.get("source") not in SOURCES:
        return None
    try:
        row = DPORow(prompt=[ChatTurn.model_validate(m) for m in pref.get("prompt", [])],
                     chosen=[ChatTurn(role="assistant", content=pref["chosen"])],
                     rejected=[ChatTurn(role="assistant", content=pref["rejected"])])
    except (KeyError, TypeError, ValidationError):
        return None
    if not row.prompt or row.chosen[0].content.strip() == row.rejected[0].content.strip():
        return None  # the same text twice teaches nothing
    extra = {k: pref[k] for k in ("round", "principles", "verdicts") if k in pref}
    return {**row.model_dump(), "source": pref["source"], "run_id": run["id"],
            "society": run["society"], "question": run["question"], **extra}


def preference_rows(log: RunLog, run_ids: Iterable[str] | None = None,
                    sources: Iterable[str] = SOURCES) -> list[dict[str, Any]]:
    """DPO rows of every preference kept by the logged runs (or the given ones, each
    once) that finished ok, oldest run first; `sources` picks judgements, revisions or
    both. Only a run's outcome is read, not its calls."""
    wanted = set(sources)
    runs = {r["id"]: r for r in log.list_runs(limit=-1) if r["status"] == "ok"}
    ids = sorted(runs) if run_ids is None else [i for i in dict.fromkeys(run_ids)
                                                if i in runs]
    out = []
    for run_id in ids:
        outcome = log.outcome(run_id) or {}
        detail = outcome.get("detail") or {}
        for pref in detail.get("preferences") or []:
            row = _row(pref, runs[run_id])
            if row is not None and row["source"] in wanted:
                out.append(row)
    return out


__all__ = ["SOURCES", "preference_rows"]
