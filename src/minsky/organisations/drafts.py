"""`drafts`: an author writes k drafts, a judge picks the best by pairwise judgement in
both orders; and the text path the default society composes from it and `critique`.

Draft 1 is the author's own reply (greedy where its temperature is 0, as in the default
society); the others are sampled at `temperature`, each with its own seed. The judge
(group "judge", else the author) compares drafts two at a time in both orders
(`minsky.organisations.judging`, the arena's judging): a round robin in one round, or a
knockout, one round a match; a failed draft is not judged, nor a truncated one while a
whole one is there. Every decisive game (the same winner in
both orders) is kept as a preference pair for `minsky star prefs`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict
from typing import Any, Literal, get_args

from pydantic import Field, field_validator

from minsky.answers import extract_answer
from minsky.messages import Message
from minsky.organisations.answering import solve_messages
from minsky.organisations.base import (
    Ask,
    Member,
    MemberAnswer,
    Organisation,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Task,
    Turn,
)
from minsky.organisations.critique import (
    Constitution,
    constitution_field,
    critique_and_revise,
    default_constitution,
)
from minsky.organisations.judging import Game, tournament
from minsky.strict import Strict

Judging = Literal["round_robin", "knockout"]
TextPath = Literal["single", "drafts", "critique", "both"]


class DraftsParams(Strict):
    k: int = Field(3, ge=1, le=8, description="drafts written")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="of every draft after the first")
    judging: Judging = "round_robin"
    judge_by_constitution: bool = Field(
        False, description="tell the judge the constitution's principles")
    constitution: Constitution = Field(default_factory=default_constitution)

    _file = field_validator("constitution", mode="before")(constitution_field)


def _draft_asks(author: Member, messages: list[Message], k: int, temperature: float
                ) -> list[Ask]:
    seed = author.options.seed or 0
    asks = [Ask(author.name, messages, purpose="answer")]
    for i in range(1, k):
        # each sample its own seed, so k drafts are k different replies
        options = author.options.model_copy(update={"temperature": temperature,
                                                    "seed": seed + i})
        asks.append(Ask(author.name, messages, purpose="draft", options=options))
    return asks


def _prefs(messages: list[Message], drafts: list[str], games: list[Game]
           ) -> list[dict[str, Any]]:
    prompt = [asdict(m) for m in messages]
    out = []
    for g in games:
        if g.score in (0.0, 1.0):
            win, lose = (g.a, g.b) if g.score == 1.0 else (g.b, g.a)
            out.append({"source": "judgement", "prompt": prompt, "chosen": drafts[win],
                        "rejected": drafts[lose], "verdicts": [g.ab, g.ba]})
    return out


DraftSteps = Generator[Round, list[Turn], tuple[int, list[str], list[Game],
                                                list[MemberAnswer]]]


def draft_and_choose(task: Task, author: Member, judge: Member, messages: list[Message],
                     k: int, temperature: float, judging: Judging,
                     principles: str | None) -> DraftSteps:
    """Write k drafts, judge them; returns the winner's index among all k (-1: every
    draft failed), the drafts' texts, the games (indices among all k) and each draft as a
    member answer. A failed draft is never judged, nor a truncated one while a whole
    one is there."""
    turns = yield Round("draft", _draft_asks(author, messages, k, temperature))
    texts = [t.text for t in turns]
    members = [MemberAnswer(author.name, extract_answer(t.text, task.kind, task.choices),
                            t.text) for t in turns]
    ok = [i for i, t in enumerate(turns) if t.reply.finish_reason != "error" and t.text.strip()]
    whole = [i for i in ok if turns[i].reply.finish_reason != "length"]
    kept = whole or ok
    if not kept:
        return -1, texts, [], members
    best, games = yield from tournament(task.question, [texts[i] for i in kept], judge,
                                        judging, principles)
    for g in games:  # back to indices among all drafts
        g.a, g.b = kept[g.a], kept[g.b]
    return kept[best], texts, games, members


def write_text(task: Task, author: Member, judge: Member, critics: list[Member], path: TextPath,
               k: int, temperature: float, judging: Judging, revisions: int,
               constitution: Constitution, judge_by_constitution: bool = False) -> OrgRun:
    """A text answer by `path`: drafts and a judge's choice, critique and revision of one
    draft, or both (the chosen draft is critiqued). The outcome's detail says which path
    ran, with the games, critiques and preference pairs."""
    messages = solve_messages(author, task)
    k = 1 if path in ("single", "critique") else k
    principles = constitution.text() if judge_by_constitution else None
    best, drafts, games, members = yield from draft_and_choose(
        task, author, judge, messages, k, temperature, judging, principles)
    detail: dict[str, Any] = {"path": path, "drafts": len(members),
                              "games": [g.to_dict() for g in games], "chosen": best + 1}
    if best < 0:
        return Outcome(None, members, detail={**detail, "stopped": "every draft failed"})
    final = drafts[best]
    prefs = _prefs(messages, drafts, games)
    revised: list[dict[str, Any]] = []
    if path in ("critique", "both") and revisions > 0:
        final, records, revised, why = yield from critique_and_revise(
            task, author, critics, messages, final, constitution, revisions)
        prefs += revised
        detail |= {"revisions": len(revised), "stopped": why, "critiques": records,
                   "constitution": constitution.source}
    answer = extract_answer(final, task.kind, task.choices)
    reads: dict[str, list[str]] = {}
    if revised:
        members.append(MemberAnswer(author.name, answer, final, 1 + len(revised)))
    if "critiques" in detail:  # the author read the critics (credit flows back to them)
        reads[author.name] = sorted({c.name for c in critics} - {author.name})
    return Outcome(answer, members, text=final, detail={**detail, "preferences": prefs},
                   reads=reads)


def describe_path(detail: dict[str, Any] | None) -> str | None:
    """How a text answer was made (drafts, judging, critique), as one line; None when
    the outcome did not take a text path, or its detail is not in the shape written here
    (a log is read back as it is: a plugin's detail may use the same keys)."""
    if not isinstance(detail, dict) or detail.get("path") not in get_args(TextPath):
        return None
    try:
        return _described(detail)
    except (TypeError, KeyError, AttributeError, ValueError):
        return None


def _described(detail: dict[str, Any]) -> str:
    steps = [f"path {detail['path']}"]
    games = detail.get("games") or []
    if detail.get("drafts", 0) > 1:
        flipped = sum(bool(g.get("flipped")) for g in games)
        steps.append(f"{detail['drafts']} drafts, {len(games)} pair(s) judged in both orders"
                     f" ({flipped} flipped), draft {detail.get('chosen')} chosen")
    if "critiques" in detail:
        asked = sorted({c["principle"] for c in detail["critiques"] if c.get("principle")})
        steps.append(f"{len(detail['critiques'])} critique(s)"
                     + (f" citing {', '.join(asked)}" if asked else "")
                     + f", {detail.get('revisions', 0)} revision(s), stopped: "
                     f"{detail.get('stopped')}")
    return " → ".join(steps)


def drafts(task: Task, society: SocietyView[DraftsParams]) -> OrgRun:
    p = society.params
    author = next((m for m in society.members if m.group == "author"), None) or next(
        (m for m in society.members if m.group != "judge"), society.members[0])
    judge = next((m for m in society.members if m.group == "judge"), author)
    return (yield from write_text(task, author, judge, [], "drafts", p.k, p.temperature,
                                  p.judging, 0, p.constitution, p.judge_by_constitution))


DRAFTS = Organisation(
    "drafts", drafts, DraftsParams,
    "an author writes k drafts; a judge picks the best by pairwise judgement in both orders",
    groups={"member": (0, 1), "author": (0, 1), "judge": (0, 1)},
)

__all__ = ["DRAFTS", "DraftsParams", "TextPath", "describe_path", "draft_and_choose", "drafts",
           "write_text"]
