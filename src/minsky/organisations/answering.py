"""The answering step shared by organisations: ask, extract, and repair the format.

Small models often reason well enough and then forget the answer line. Where a member's
backend honours grammars, a member whose answer cannot be extracted is asked once more,
with its own reply in context, for just the answer, under a grammar that admits nothing
else. Members on backends without grammars keep whatever extraction found.
"""

from __future__ import annotations

from collections.abc import Generator

from minsky.answers import answer_grammar, extract_answer
from minsky.messages import Message, Options
from minsky.organisations.base import Ask, Member, MemberAnswer, Round, Task, Turn
from minsky.prompts import render


def solve_messages(member: Member, task: Task) -> list[Message]:
    """The messages that ask `member` to solve `task` in its role."""
    user = render("solve", question=task.question, kind=task.kind, choices=list(task.choices))
    return [Message("system", member.role), Message("user", user)]


def answer_all(
    members: list[Member], task: Task, label: str = "answer", repair: bool = True
) -> Generator[Round, list[Turn], list[MemberAnswer]]:
    """Ask every member to solve the task in one round; repair unextractable answers."""
    asks = [Ask(m.name, solve_messages(m, task), purpose="answer") for m in members]
    turns = yield Round(label, asks)
    answers = [
        MemberAnswer(t.ask.agent, extract_answer(t.text, task.kind, task.choices), t.text)
        for t in turns
    ]
    if not repair:
        return answers
    by_name = {m.name: m for m in members}
    broken = [
        (i, t)
        for i, t in enumerate(turns)
        if answers[i].answer is None and by_name[t.ask.agent].constrained
    ]
    if broken:
        grammar = answer_grammar(task.kind, task.choices)
        fix = render("repair", kind=task.kind)
        repairs = [
            Ask(
                t.ask.agent,
                [*t.ask.messages, Message("assistant", t.text), Message("user", fix)],
                purpose="repair",
                grammar=grammar,
                options=Options(temperature=0.0, max_tokens=24),
            )
            for _, t in broken
        ]
        fixed = yield Round(f"{label}:repair", repairs)
        for (i, _), t in zip(broken, fixed, strict=True):
            answers[i].answer = extract_answer(t.text, task.kind, task.choices)
            answers[i].round = 2
    return answers
