"""`debate`: multi-agent debate (Du et al., arXiv 2305.14325).

N debaters answer; for `rounds` - 1 more rounds each reads the others' latest answers
and updates its own, continuing its own conversation (so a prefix cache decodes only the
new turn). The final answer is the majority of the last answers, or, with `decide =
"editor"`, the decision of an `editor` member who reads them. Groups: `debater`s and an
optional `editor`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from minsky.answers import tally_votes
from minsky.organisations.answering import (
    ask_all,
    decide,
    follow_up,
    prompt,
    solve_messages,
)
from minsky.organisations.base import Ask, Organisation, OrgRun, Outcome, SocietyView, Task
from minsky.strict import Strict


class DebateParams(Strict):
    rounds: int = Field(2, ge=1, le=10, description="answering rounds, the first included")
    decide: Literal["majority", "editor"] = "majority"
    excerpt_chars: int = Field(800, ge=50, description="of each other answer shown")
    repair: bool = True


def _excerpt(text: str, chars: int) -> str:
    text = text.strip()
    return text if len(text) <= chars else "…" + text[-chars:]


def debate(task: Task, society: SocietyView[DebateParams]) -> OrgRun:
    params = society.params
    debaters = society.group("debater")
    convs = {d.name: solve_messages(d, task) for d in debaters}
    asks = [Ask(d.name, convs[d.name], purpose="answer") for d in debaters]
    answers = yield from ask_all(asks, debaters, task, "round 1", params.repair)
    for k in range(2, params.rounds + 1):
        asks = []
        for i, d in enumerate(debaters):
            others = [_excerpt(a.text, params.excerpt_chars)
                      for j, a in enumerate(answers) if j != i]
            update = prompt("debate_update", task, others=others)
            convs[d.name] = follow_up(convs[d.name], answers[i].text, update)
            asks.append(Ask(d.name, convs[d.name], purpose="update"))
        answers = yield from ask_all(asks, debaters, task, f"round {k}", params.repair)
        for a in answers:
            a.round = k
    tally = tally_votes([a.answer for a in answers], task.kind)
    names = [d.name for d in debaters]
    reads = {n: [o for o in names if o != n] for n in names} if params.rounds > 1 else {}
    if params.decide == "majority" or not society.group("editor"):
        return Outcome(tally.winner, answers, tally.to_dict(), reads=reads)
    editor = society.group("editor")[0]
    material = "\n\n".join(
        f"{a.name} (answer {a.answer}): {_excerpt(a.text, params.excerpt_chars)}"
        for a in answers
    )
    (verdict,) = yield from decide(
        editor, task, "The debaters' final answers:", material, "editor", params.repair
    )
    verdict.round = params.rounds + 1
    reads[editor.name] = names
    return Outcome(verdict.answer, [*answers, verdict], tally.to_dict(), text=verdict.text,
                   reads=reads)


DEBATE = Organisation(
    "debate", debate, DebateParams,
    "debaters answer and update on each other's answers; majority or an editor decides",
    groups={"debater": (1, None), "editor": (0, 1)},
)


