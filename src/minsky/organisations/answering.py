"""Steps shared by organisations: ask members, extract answers, repair broken formats.

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

Steps = Generator[Round, list[Turn], list[MemberAnswer]]


def solve_messages(member: Member, task: Task) -> list[Message]:
    """The messages that ask `member` to solve `task` in its role."""
    return [Message("system", member.role), Message("user", prompt("solve", task))]


def prompt(name: str, task: Task, **variables: object) -> str:
    """Render a prompt template with the task's question, answer kind and choices."""
    return render(name, question=task.question, kind=task.kind, choices=list(task.choices),
                  **variables)


def follow_up(messages: list[Message], reply: str, text: str) -> list[Message]:
    """A member's conversation so far, its reply, and a new user message.

    Keeping the conversation (rather than a fresh prompt) lets a backend with a prefix
    cache decode only the new turn.
    """
    return [*messages, Message("assistant", reply), Message("user", text)]


def ask_all(
    asks: list[Ask], members: list[Member], task: Task, label: str, repair: bool = True
) -> Steps:
    """Send `asks` as one round, extract each answer, repair the broken ones."""
    turns = yield Round(label, asks)
    answers = [
        MemberAnswer(t.ask.agent, extract_answer(t.text, task.kind, task.choices), t.text)
        for t in turns
    ]
    if not repair:
        return answers
    constrained = {m.name: m.constrained for m in members}
    broken = [
        (i, t)
        for i, t in enumerate(turns)
        if answers[i].answer is None and constrained.get(t.ask.agent, False)
        and t.reply.finish_reason != "error"
    ]
    if broken:
        grammar = answer_grammar(task.kind, task.choices)
        fix = render("repair", kind=task.kind)
        repairs = [
            Ask(t.ask.agent, follow_up(t.ask.messages, t.text, fix), purpose="repair",
                grammar=grammar, options=Options(temperature=0.0, max_tokens=24))
            for _, t in broken
        ]
        fixed = yield Round(f"{label}:repair", repairs)
        for (i, _), t in zip(broken, fixed, strict=True):
            answers[i].answer = extract_answer(t.text, task.kind, task.choices)
            answers[i].round += 1
    return answers


def answer_all(
    members: list[Member], task: Task, label: str = "answer", repair: bool = True
) -> Steps:
    """Ask every member to solve the task in one round; repair unextractable answers."""
    asks = [Ask(m.name, solve_messages(m, task), purpose="answer") for m in members]
    return (yield from ask_all(asks, members, task, label, repair))


def decide(
    member: Member, task: Task, intro: str, material: str, label: str, repair: bool = True
) -> Steps:
    """One member (a leader, an editor, an aggregator) decides the final answer."""
    messages = [
        Message("system", member.role),
        Message("user", prompt("decide", task, intro=intro, material=material)),
    ]
    return (yield from ask_all([Ask(member.name, messages, purpose="decide")], [member], task,
                               label, repair))
