"""Export mined rationales as training rows: SFT in the chat-messages form, DPO pairs.

SFT rows are what TRL and most trainers read (`{"messages": [...]}`): the member's own
system prompt and question, exactly as the society sent them, and the kept reply as the
assistant turn. DPO rows pair a right and a wrong reply of the same kind to the same
prompt. Every row keeps its provenance (case, kind, hinted, source, run, member, round,
model) next to the fields trainers read.

Reporting problems are dropped here too, whatever the mined file holds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from minsky.star.mine import Exclusion
from minsky.star.rows import ChatTurn, DPORow, Rationale, SFTRow

ExportKind = Literal["program", "cot", "all"]


def _provenance(row: Rationale) -> dict[str, Any]:
    return {"case": row.case, "kind": row.kind, "hinted": row.hinted, "source": row.source,
            "run_id": row.run_id, "member": row.member, "round": row.round,
            "model": row.model}


def _wanted(row: Rationale, kind: ExportKind, excluded: Exclusion, zero_shot: bool) -> bool:
    # zero-shot: the prompt is the system prompt and the question, no worked examples
    plain = len(row.messages) == 2 or not zero_shot
    return (kind == "all" or row.kind == kind) and plain and (
        row.case, row.question) not in excluded


def sft_rows(rows: Iterable[Rationale], excluded: Exclusion, kind: ExportKind = "all",
             per_case: int = 0, seed: int = 0, zero_shot: bool = False
             ) -> list[dict[str, Any]]:
    """SFT rows of the right replies; at most `per_case` per case and kind (0: all),
    distinct paths first chosen at random with `seed`; with `zero_shot`, only replies
    asked without worked examples (a reply teaches its style under the prompt it is
    trained with)."""
    groups: dict[tuple[str, str], list[Rationale]] = defaultdict(list)
    for row in rows:
        if row.correct and _wanted(row, kind, excluded, zero_shot):
            groups[(row.case, row.kind)].append(row)
    rng = random.Random(seed)
    out = []
    for group in groups.values():
        if per_case and len(group) > per_case:
            # unhinted rationales first: a hinted one is only for a problem nobody solved
            group = sorted(rng.sample(group, len(group)), key=lambda r: r.hinted)[:per_case]
        for row in group:
            messages = [*row.messages, ChatTurn(role="assistant", content=row.reply)]
            sft = SFTRow(messages=messages)
            out.append({"messages": [m.model_dump() for m in sft.messages],
                        **_provenance(row)})
    return out


def dpo_rows(rows: Iterable[Rationale], excluded: Exclusion, kind: ExportKind = "all",
             per_case: int = 2, seed: int = 0, zero_shot: bool = False
             ) -> list[dict[str, Any]]:
    """DPO pairs: for each case and kind, up to `per_case` (right, wrong) pairs of
    replies to the same prompt."""
    right: dict[tuple[str, str], list[Rationale]] = defaultdict(list)
    wrong: dict[tuple[str, str], list[Rationale]] = defaultdict(list)
    for row in rows:
        if _wanted(row, kind, excluded, zero_shot) and not row.hinted:
            (right if row.correct else wrong)[(row.case, row.kind)].append(row)
    rng = random.Random(seed)
    out = []
    for key, good in right.items():
        bad = wrong.get(key, [])
        # pairs only share a prompt when the two replies were asked the same way
        pairs = [(g, b) for g in good for b in bad if g.messages == b.messages]
        rng.shuffle(pairs)
        for g, b in pairs[: per_case or None]:
            pair = DPORow(prompt=g.messages,
                          chosen=[ChatTurn(role="assistant", content=g.reply)],
                          rejected=[ChatTurn(role="assistant", content=b.reply)])
            out.append({**pair.model_dump(), **_provenance(g),
                        "rejected_answer": b.answer})
    return out
