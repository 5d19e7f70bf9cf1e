"""Run a society over a batch of questions, several at once, resumably.

Questions come from a JSONL file (one object per line, the question under `field`) or a
plain text file (one question per line). Up to `concurrency` questions run at once on the
shared backends, so their members' asks join the same model batches. One JSON line per
finished question is appended to the output file as soon as it finishes; running the
same command again skips the questions already there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minsky.caserun import run_case
from minsky.records import jsonl_rows, read_records
from minsky.runner import Runner
from minsky.society import Society


def read_questions(path: Path, field: str = "question") -> list[tuple[str, str]]:
    """(id, question) pairs: ids are the `id` field if present, else the line number."""
    return [(str(row.get("id", n)), row[field])
            for n, row in read_records(path, field, "questions file")]


def finished_ids(out: Path, society: str) -> set[str]:
    """Ids already answered by `society` in an output file."""
    return {r["id"] for r in jsonl_rows(out) if r.get("society") == society}


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
    done = finished_ids(out, society.name)
    todo = [(qid, q) for qid, q in questions if qid not in done]
    gate = asyncio.Semaphore(concurrency)
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)

    async def one(qid: str, question: str) -> None:
        async with gate:
            result = await run_case(runner, society, question, kind)
        row = {
            "id": qid, "society": society.name, "question": question,
            "answer": result.answer, "status": result.status,
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "wall_s": round(result.wall_s, 2), "run_id": result.run_id,
        }
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        rows.append(row)
        if on_row:
            on_row(row)

    await asyncio.gather(*(one(qid, q) for qid, q in todo))
    return rows
