"""`contest`: proposers propose, critics vote, a collector counts (NLSOM text-to-image).

The top level of the NLSOM text-to-image society: every `proposer` (often a whole
sub-society — an "artist" of questioner, answerer and leader) proposes an answer, every
`critic` (each with its own profession in its role) votes for one proposal under the
voting rule, and the collector — the counting step, done here by the organisation, so
it cannot miscount — returns the winning proposal. Ties go to the first proposal.
"""

from __future__ import annotations

from pydantic import Field

from minsky.messages import Message, Options
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


class ContestParams(Strict):
    # what proposers are asked; {question} is the user's request
    brief: str = Field("{question}", description="the proposers' instruction")
    rule: Rule = "plurality"
    excerpt_chars: int = Field(600, ge=50, description="of each proposal shown to critics")


def contest(task: Task, society: SocietyView[ContestParams]) -> OrgRun:
    params = society.params
    proposers, critics = society.group("proposer"), society.group("critic")
    brief = params.brief.replace("{question}", task.question)
    turns = yield Round("propose", [
        Ask(p.name, [Message("system", p.role), Message("user", brief)], purpose="propose")
        for p in proposers
    ])
    # a ballot names proposals by letter: beyond 26, the first proposed stand
    proposals = [t for t in turns if t.text.strip()][: len(LABELS)]
    answers = [MemberAnswer(t.ask.agent, t.text.strip(), t.text) for t in proposals]
    if len(proposals) <= 1:
        winner = answers[0].answer if answers else None
        return Outcome(winner, answers, {"proposals": len(proposals)}, text=winner)
    shown = [
        {"label": LABELS[k], "answer": " ".join(t.text.split())[: params.excerpt_chars],
         "reason": ""}
        for k, t in enumerate(proposals)
    ]
    ballot = render("ballot", question=task.question, candidates=shown, rule=params.rule)
    grammar = ballot_grammar(params.rule, len(proposals))
    votes = yield Round("critique", [
        Ask(c.name, [Message("system", c.role), Message("user", ballot)], purpose="vote",
            grammar=grammar, options=Options(temperature=0.0, max_tokens=4 * len(proposals) + 4))
        for c in critics
    ])
    ballots = [parse_ballot(v.text, len(proposals)) for v in votes]
    result = count(params.rule, ballots, len(proposals))
    winner = answers[result.winner].answer if result.winner is not None else None
    detail = {
        **result.to_dict(),
        "proposers": [t.ask.agent for t in proposals],
        "ballots": {v.ask.agent: [LABELS[k] for k in b]
                    for v, b in zip(votes, ballots, strict=True)},
        "collector": "counted by the organisation",
    }
    reads = {c.name: [t.ask.agent for t in proposals] for c in critics}
    return Outcome(winner, answers, detail, text=winner, reads=reads)


CONTEST = Organisation(
    "contest", contest, ContestParams,
    "proposers (or sub-societies) propose, critics vote, the collector counts",
    groups={"proposer": (1, None), "critic": (1, None)},
)
