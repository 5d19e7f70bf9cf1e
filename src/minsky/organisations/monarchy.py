"""`monarchy`: the NLSOM mindstorm (Zhuge, Schmidhuber et al., arXiv 2305.17066).

An organizer receives the task and poses a sub-question; all experts answer it in one
round; the organizer reads their answers and poses the next. After `rounds` such rounds
the organizer summarises the whole exchange, and the leader reads the summary and decides
the final answer. Groups: one `organizer`, one `leader` (the organizer leads when there
is none), any number of `expert`s.
"""

from __future__ import annotations

from pydantic import Field

from minsky.messages import Message
from minsky.organisations.answering import decide, prompt
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
from minsky.strict import Strict


class MonarchyParams(Strict):
    rounds: int = Field(2, ge=1, le=20, description="sub-questions the organizer poses")
    repair: bool = True


def monarchy(task: Task, society: SocietyView[MonarchyParams]) -> OrgRun:
    params = society.params
    organizer = society.group("organizer")[0]
    leader = (society.group("leader") or [organizer])[0]
    experts = society.group("expert")
    exchange: list[str] = []
    subquestions: list[str] = []
    answers: list[MemberAnswer] = []
    for k in range(1, params.rounds + 1):
        asking = prompt("monarchy_organizer", task, exchange="\n".join(exchange))
        (turn,) = yield Round(f"organizer:{k}", [
            Ask(organizer.name, [Message("system", organizer.role), Message("user", asking)],
                purpose="sub-question")
        ])
        subq = turn.text.strip() or task.question
        subquestions.append(subq)
        exchange.append(f"Organizer: {subq}")
        msgs = [prompt("monarchy_expert", task, subquestion=subq) for _ in experts]
        turns = yield Round(f"experts:{k}", [
            Ask(e.name, [Message("system", e.role), Message("user", m)], purpose="expert")
            for e, m in zip(experts, msgs, strict=True)
        ])
        answers = [MemberAnswer(t.ask.agent, None, t.text, k) for t in turns]
        exchange.extend(f"{t.ask.agent}: {t.text.strip()}" for t in turns)
    summary_prompt = prompt("monarchy_summary", task, exchange="\n".join(exchange))
    (summary,) = yield Round("summary", [
        Ask(organizer.name,
            [Message("system", organizer.role), Message("user", summary_prompt)],
            purpose="summary")
    ])
    (verdict,) = yield from decide(
        leader, task, "Summary of your organizer's discussion with the experts:",
        summary.text.strip(), "leader", params.repair,
    )
    verdict.round = params.rounds + 1
    return Outcome(
        verdict.answer,
        [*answers, verdict],
        detail={"subquestions": subquestions, "summary": summary.text, "leader": leader.name},
        text=verdict.text,
        reads={
            **{e.name: [organizer.name] for e in experts},
            organizer.name: [e.name for e in experts],
            leader.name: [organizer.name] if leader is not organizer else [e.name for e in experts],
        },
    )


MONARCHY = Organisation(
    "monarchy", monarchy, MonarchyParams,
    "an organizer poses sub-questions to experts; a leader decides from its summary",
    groups={"organizer": (1, 1), "leader": (0, 1), "expert": (1, None)},
)
