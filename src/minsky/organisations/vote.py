"""`vote`: sampling-and-voting ("More Agents Is All You Need", arXiv 2402.05120).

Every member answers the same question independently in one round (sampled at
temperature > 0, each with its own seed); the answers are extracted and the plurality
wins. Ties go to the answer given first, so the same replies always give the same
decision. The simple, strong baseline every other organisation must beat at equal compute.
"""

from __future__ import annotations

from minsky.answers import tally_votes
from minsky.organisations.answering import answer_all
from minsky.organisations.base import Organisation, OrgRun, Outcome, SocietyView, Task
from minsky.strict import Strict


class VoteParams(Strict):
    repair: bool = True  # re-ask, under a grammar, members whose answer cannot be extracted


def vote(task: Task, society: SocietyView[VoteParams]) -> OrgRun:
    params = society.params
    answers = yield from answer_all(society.members, task, repair=params.repair)
    tally = tally_votes([a.answer for a in answers], task.kind)
    return Outcome(tally.winner, answers, tally.to_dict())


def single(task: Task, society: SocietyView[VoteParams]) -> OrgRun:
    params = society.params
    answers = yield from answer_all(society.members[:1], task, repair=params.repair)
    return Outcome(answers[0].answer, answers)


VOTE = Organisation(
    "vote", vote, VoteParams, "members answer independently; the plurality decides"
)
SINGLE = Organisation(
    "single", single, VoteParams, "one agent answers alone", groups={"member": (1, 1)}
)
