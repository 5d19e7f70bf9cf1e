"""The rows STaR reads and writes: mined rationales and SFT/DPO training rows.

One home for their shapes, so `mine`, `export` and `train` agree, and a malformed row in
a user's file is reported as one line naming the file, the line and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from minsky.errors import MinskyError
from minsky.inputs.records import jsonl_objects
from minsky.strict import Strict, error_line


class ChatTurn(Strict):
    """One chat message of a training row."""

    role: Literal["system", "user", "assistant"]
    content: str


class SFTRow(BaseModel):
    """A supervised row in the chat-messages form TRL reads: the member's own system prompt
    and question, then the kept reply as the last (assistant) turn. Extra keys (minsky's
    provenance) are kept and ignored by trainers."""

    messages: list[ChatTurn]


class DPORow(BaseModel):
    """A preference pair: the same prompt, a right (`chosen`) and a wrong (`rejected`) reply."""

    prompt: list[ChatTurn]
    chosen: list[ChatTurn]
    rejected: list[ChatTurn]


class Rationale(Strict):
    """A member reply kept because its answer matched the gold answer (or, for DPO, a
    wrong one kept as the rejected side), with where it came from."""

    case: str  # the benchmark case id ("train:22")
    bench: str = ""  # the benchmark file it came from (its reporting sample is refused)
    question: str
    gold: str
    kind: Literal["program", "cot"]
    messages: list[ChatTurn]  # what the member was sent, system prompt first
    reply: str  # the whole assistant reply, as the member wrote it (fences included)
    answer: str | None
    correct: bool
    hinted: bool = False
    source: str  # "log", "results:FILE", "run"
    run_id: str | None = None
    member: str = ""
    round: int = 0  # the STaR round that mined it (0: the base model)
    model: str = ""
    key: str = ""  # the normalised program (or reply) that deduplicates it


RowT = TypeVar("RowT", bound=BaseModel)


def read_rows(path: Path, model: type[RowT], what: str = "training file") -> list[RowT]:
    """Every row of a JSONL file as `model`; a malformed row is one line naming the file,
    the line and what is wrong with it."""
    rows: list[RowT] = []
    for n, obj in jsonl_objects(path, what):
        try:
            row = model.model_validate(obj)
        except ValidationError as err:
            raise MinskyError(error_line(err, f"{path}:{n}")) from None
        if isinstance(row, SFTRow) and (len(row.messages) < 2
                                        or row.messages[-1].role != "assistant"):
            raise MinskyError(f"{path}:{n}: field 'messages': expected the prompt turns, "
                              "then one assistant turn last")
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[Any]) -> None:
    """Write rows (pydantic models or dicts) as JSONL, replacing `path` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            data = row.model_dump(exclude_none=False) if isinstance(row, BaseModel) else row
            f.write(json.dumps(data, ensure_ascii=False) + "\n")
    tmp.replace(path)
