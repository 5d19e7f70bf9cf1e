"""`prompt`: one member replies to the question as it stands, once, with no answer format.

The raw call as an organisation: the question is the whole user message (the member's
role, when it has one, the system message), and the reply is the outcome's text. The
economy's own calls (a leader's split of the reward, a child's role, bought advice) run
through it, so they are logged, budgeted and resumable like any other run.
"""

from __future__ import annotations

from pydantic import Field

from minsky.messages import Message
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


class PromptParams(Strict):
    purpose: str = Field("answer", min_length=1, max_length=40,
                         description="what the call is for, as the log shows it")


def prompt(task: Task, society: SocietyView[PromptParams]) -> OrgRun:
    params = society.params
    member = society.members[0]
    messages = [Message("system", member.role)] if member.role else []
    messages.append(Message("user", task.question))
    turns = yield Round(params.purpose, [Ask(member.name, messages, params.purpose)])
    reply = turns[0].reply
    text = " ".join(reply.text.split()) if reply.finish_reason != "error" else ""
    return Outcome(text or None, [MemberAnswer(member.name, text or None, reply.text)],
                   text=reply.text)


PROMPT = Organisation(
    "prompt", prompt, PromptParams,
    "one member replies to the question as it stands (no answer format): a raw call",
    groups={"member": (1, 1)},
)
