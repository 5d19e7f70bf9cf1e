"""Run a society over a batch of questions, several at once, resumably.

Questions come from a JSONL file (one object per line, the question under `field`) or a
plain text file (one question per line). Up to `concurrency` questions run at once on the
shared backends, so their members' asks join the same model batches. One JSON line per
finished question is appended to the output file as soon as it finishes; running the
same command again skips the questions already there (`minsky.results`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from minsky.inputs.records import read_records, unique_ids
from minsky.results import FAILED, Item, open_results, read_rows, run_many
from minsky.runner import Runner, RunResult
from minsky.society import Society


def read_questions(path: Path, field: str = "question") -> list[tuple[str, str]]:
    """(id, question) pairs: ids are the `id` field if present, else the line number; a
    repeated id gets "#2", "#3", … so that no question is taken for another on resume."""
    records = read_records(path, field, "questions file")
    ids = unique_ids([str(row.get("id", n)) for n, row in records])
    return [(qid, row[field]) for qid, (_, row) in zip(ids, records, strict=True)]


def finished_ids(out: Path, society: str) -> set[str]:
    """Ids already answered by `society` in an output file (a question whose last run
    failed is not: a rerun retries it)."""
    last = {str(r["id"]): r for r in read_rows(out) if r.get("society") == society and "id" in r}
    return {qid for qid, r in last.items() if r.get("status") not in FAILED}


def _row(item: Item, result: RunResult) -> dict[str, Any]:
    return {
        "id": item.key, "society": result.society, "question": item.question,
        "answer": result.answer, "status": result.status,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "wall_s": round(result.wall_s, 3), "run_id": result.run_id,
        **({"error": result.error} if result.error else {}),  # why a run failed
    }


async def run_batch(
    runner: Runner,
    society: Society,
    questions: list[tuple[str, str]],
    out: Path,
    concurrency: int = 4,
    kind: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Answer every question not yet in `out`; return the rows written now."""
    items = [Item(qid, q, kind) for qid, q in questions]
    with open_results(out) as results:
        return await run_many(
            runner, society, items, results,
            lambda r: str(r["id"]) if r.get("society") == society.name and "id" in r else None,
            _row, concurrency, on_row)
