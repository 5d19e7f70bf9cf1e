"""`democracy`: members answer, read each other, may revise, then vote.

Round 1: every member answers independently. Round 2 (if `revise`): each member is shown
the answers of its neighbours — everyone, or the `neighbours` members after it on a ring
— and may revise. Then the distinct answers become candidates A, B, …, and every member
casts a ballot under the voting rule (plurality, approval or Borda; see
`minsky.organisations.voting`). A unanimous society skips the ballot. Ties go to the
candidate proposed first. The NLSOM paper compares this structure with the monarchy.
"""

from __future__ import annotations

from pydantic import Field

from minsky.answers import answers_match
from minsky.messages import Message, Options
from minsky.organisations.answering import (
    answer_all,
    ask_all,
    follow_up,
    prompt,
    solve_messages,
)
from minsky.organisations.base import (
    Ask,
    MemberAnswer,
    Organisation,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Task,
)
from minsky.organisations.voting import LABELS, Rule, ballot_grammar, count, parse_ballot
from minsky.prompts import render
from minsky.strict import Strict


class DemocracyParams(Strict):
    revise: bool = True
    neighbours: int | None = Field(None, ge=1, description="ring neighbours seen; None: all")
    rule: Rule = "plurality"
    reason_chars: int = Field(200, ge=0, description="excerpt of a reply shown on the ballot")
    repair: bool = True


def _tail(text: str, chars: int) -> str:
    if chars <= 0:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else "…" + flat[-chars:]


def neighbours_of(i: int, n: int, k: int | None) -> list[int]:
    """Who member i reads: everyone else, or the k members after it on a ring."""
    if k is None or k >= n - 1:
        return [j for j in range(n) if j != i]
    return [(i + d) % n for d in range(1, k + 1)]


def democracy(task: Task, society: SocietyView[DemocracyParams]) -> OrgRun:
    params = society.params
    members = society.members
    answers = yield from answer_all(members, task, "answer", params.repair)
    reads: dict[str, list[str]] = {}
    if params.revise and len(members) > 1:
        asks = []
        for i, m in enumerate(members):
            reads[m.name] = [members[j].name
                             for j in neighbours_of(i, len(members), params.neighbours)]
            others = [
                {"name": members[j].name, "text": _tail(answers[j].text, 600)}
                for j in neighbours_of(i, len(members), params.neighbours)
            ]
            text = render("revise", others=others, kind=task.kind, choices=list(task.choices))
            messages = follow_up(solve_messages(m, task), answers[i].text, text)
            asks.append(Ask(m.name, messages, purpose="revise"))
        revised = yield from ask_all(asks, members, task, "revise", params.repair)
        for r in revised:
            r.round = 2
        answers = revised

    # candidates: distinct answers in order of first appearance
    candidates: list[MemberAnswer] = []
    for a in answers:
        if a.answer is not None and not any(
            answers_match(a.answer, c.answer, task.kind) for c in candidates
        ):
            candidates.append(a)
    # a ballot names candidates by letter: beyond 26, the first proposed stand
    candidates = candidates[: len(LABELS)]
    tally = {"rule": params.rule, "candidates": [c.answer for c in candidates]}
    if len(candidates) <= 1:
        winner = candidates[0].answer if candidates else None
        return Outcome(winner, answers, {**tally, "unanimous": bool(candidates)}, reads=reads)

    ballot = prompt(
        "ballot", task, rule=params.rule,
        candidates=[
            {"label": LABELS[k], "answer": c.answer, "reason": _tail(c.text, params.reason_chars)}
            for k, c in enumerate(candidates)
        ],
    )
    grammar = ballot_grammar(params.rule, len(candidates))
    # a ballot is a few letters: decided greedily, not sampled like the answers
    ballot_options = Options(temperature=0.0, max_tokens=4 * len(candidates) + 4)
    turns = yield Round("vote", [
        Ask(m.name, [Message("system", m.role), Message("user", ballot)], purpose="vote",
            grammar=grammar, options=ballot_options)
        for m in members
    ])
    ballots = [parse_ballot(t.text, len(candidates)) for t in turns]
    result = count(params.rule, ballots, len(candidates))
    winner = candidates[result.winner].answer if result.winner is not None else None
    votes = {t.ask.agent: [LABELS[k] for k in b] for t, b in zip(turns, ballots, strict=True)}
    return Outcome(winner, answers, {**tally, **result.to_dict(), "ballots": votes},
                   reads=reads)


DEMOCRACY = Organisation(
    "democracy", democracy, DemocracyParams,
    "members answer, read their neighbours, may revise, then vote (plurality/approval/borda)",
)
