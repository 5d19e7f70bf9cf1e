"""`roleplay`: CAMEL role-playing (Li et al., arXiv 2303.17760).

A `specifier` sharpens the user's task; then a `user` agent (who instructs) and an
`assistant` agent (who solves) take turns, each continuing its own conversation, until
one of them says the done word or `max_turns` instruction–solution pairs have passed.
Finally the assistant is asked for the final answer. Groups: `user`, `assistant`, and an
optional `specifier`.
"""

from __future__ import annotations

from pydantic import Field

from minsky.messages import Message
from minsky.organisations.answering import ask_all, prompt
from minsky.organisations.base import (
    Ask,
    Organisation,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Task,
)
from minsky.prompts import render
from minsky.strict import Strict


class RoleplayParams(Strict):
    user_role: str = "Student"
    assistant_role: str = "Tutor"
    max_turns: int = Field(3, ge=1, le=50, description="instruction–solution pairs at most")
    word_limit: int = Field(60, ge=5)
    done: str = "<TASK_DONE>"
    repair: bool = True


def roleplay(task: Task, society: SocietyView[RoleplayParams]) -> OrgRun:
    p = society.params
    assert isinstance(p, RoleplayParams)
    user, assistant = society.group("user")[0], society.group("assistant")[0]
    roles = {"user_role": p.user_role, "assistant_role": p.assistant_role}
    specified = task.question
    specifiers = [s.name for s in society.group("specifier")]
    if society.group("specifier"):
        spec = society.group("specifier")[0]
        ask = prompt("roleplay_specify", task, word_limit=p.word_limit, **roles)
        (turn,) = yield Round("specify", [
            Ask(spec.name, [Message("system", spec.role), Message("user", ask)],
                purpose="specify")
        ])
        # small models drop numbers when they rephrase: keep the original task beside it
        if turn.text.strip():
            specified = f"{task.question}\nSpecified task: {turn.text.strip()}"
    user_conv = [
        Message("system", f"{user.role}\n\n" + render("roleplay_user", task=specified,
                                                        done=p.done, **roles)),
        Message("user", "Now start to give me instructions one by one."),
    ]
    asst_conv = [
        Message("system", f"{assistant.role}\n\n" + render("roleplay_assistant",
                                                            task=specified, **roles)),
    ]
    finished_by = None
    turns_taken = 0
    for k in range(1, p.max_turns + 1):
        (u,) = yield Round(f"turn {k}: instruct", [
            Ask(user.name, list(user_conv), purpose="instruct")
        ])
        turns_taken = k
        user_conv.append(Message("assistant", u.text))
        if p.done in u.text:
            finished_by = user.name
            break
        asst_conv.append(Message("user", u.text))
        (a,) = yield Round(f"turn {k}: solve", [
            Ask(assistant.name, list(asst_conv), purpose="solve")
        ])
        asst_conv.append(Message("assistant", a.text))
        if p.done in a.text:
            finished_by = assistant.name
            break
        user_conv.append(Message("user", a.text))
    final = [*asst_conv, Message("user", "The task is done. " + prompt("answer_format", task))]
    (verdict,) = yield from ask_all(
        [Ask(assistant.name, final, purpose="answer")], [assistant], task, "final", p.repair
    )
    verdict.round = turns_taken + 1
    return Outcome(
        verdict.answer, [verdict],
        detail={"specified": specified, "turns": turns_taken, "finished_by": finished_by},
        text=verdict.text,
        reads={user.name: [assistant.name, *specifiers],
               assistant.name: [user.name, *specifiers]},
    )


ROLEPLAY = Organisation(
    "roleplay", roleplay, RoleplayParams,
    "a specifier sharpens the task; a user and an assistant agent take turns (CAMEL)",
    groups={"specifier": (0, 1), "user": (1, 1), "assistant": (1, 1)},
)
