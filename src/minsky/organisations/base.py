"""What an organisation is: a sans-IO generator over rounds of asks.

An organisation never calls a model. It yields a `Round` (the asks of that round, one per
member asked), receives the `Turn`s (the replies, in the same order), and finally returns
an `Outcome`. The runner owns batching, budgets, logging and I/O, so an organisation is
tested with canned replies alone:

    gen = vote(task, society)
    rnd = next(gen)                      # Round("answer", [Ask(...), ...])
    outcome = gen.send([Turn(...), ...]) # raises StopIteration(outcome) at the end
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel

from minsky.answers import AnswerKind
from minsky.messages import ChatReply, Message, Options
from minsky.strict import Strict


@dataclass(frozen=True)
class Task:
    """What the society is asked: the question and the kind of answer expected."""

    question: str
    kind: AnswerKind = "number"
    choices: str = "ABCDE"


_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[).:]\s+\S", re.MULTILINE)


def choice_letters(question: str) -> str:
    """The letters a multiple-choice question offers ("A) …" lines), in order; "ABCDE"
    when it lists fewer than two.

    The answer instruction names them and the answer extractor accepts only them, so a
    four-option question is not told that "E" is a possible answer."""
    letters = "".join(dict.fromkeys(_OPTION_LINE.findall(question)))
    return letters if len(letters) >= 2 else "ABCDE"


def detect_kind(question: str) -> AnswerKind:
    """Guess the answer kind of a question: choice letters, a number, or free text."""
    # two or more "A) …" lines among A–E (a lone "I." or "X:" line is not a choice list)
    if len(set(_OPTION_LINE.findall(question)) & set("ABCDE")) >= 2:
        return "choice"
    if re.search(r"\d", question) or re.search(r"\bhow (many|much)\b", question, re.I):
        return "number"
    return "text"


def answer_kind(requested: str | None, question: str) -> AnswerKind:
    """The answer kind a run uses: the one requested, or for "auto" (and None) the one
    `detect_kind` guesses. The one place "auto" is resolved."""
    if requested is None or requested == "auto":
        return detect_kind(question)
    for kind in get_args(AnswerKind):
        if requested == kind:
            return kind  # type: ignore[no-any-return]
    raise ValueError(f"answer kind {requested!r}: expected auto, number, choice or text")


@dataclass(frozen=True)
class Member:
    """A member as an organisation sees it: name, role prompt, options, capabilities."""

    name: str
    role: str
    options: Options
    constrained: bool = False  # its backend honours grammars, so a format can be forced
    group: str = "member"  # its part in the organisation: expert, leader, critic, …
    prefill: bool = False  # its backend continues a reply begun for it (`Ask.prefix`)
    agent: str = ""  # the society file's agent it is a copy of (name-1 … name-k share one)


@dataclass
class Ask:
    """One request to one member. `options` overrides the member's own sampling options."""

    agent: str
    messages: list[Message]
    purpose: str = "answer"
    grammar: str | None = None
    options: Options | None = None
    # text the reply starts with (where the backend can continue a reply; else ignored)
    prefix: str = ""


@dataclass
class Round:
    """The asks of one round; the runner sends them to each backend as one batch."""

    label: str
    asks: list[Ask]


@dataclass
class Turn:
    """A member's reply to an ask."""

    ask: Ask
    reply: ChatReply

    @property
    def text(self) -> str:
        return self.reply.text


@dataclass
class MemberAnswer:
    """One member's answer, as reported in the outcome (`name`, `answer` are stable keys)."""

    name: str
    answer: str | None
    text: str
    round: int = 1


# a budget's status names the limit that stopped the run: max_rounds (its own), and
# max_tokens, max_calls and timeout (its own, or those of a run it serves)
Status = Literal["ok", "max_rounds", "max_tokens", "max_calls", "timeout", "error",
                 "interrupted"]


@dataclass
class Outcome:
    """What an organisation decided."""

    answer: str | None
    members: list[MemberAnswer] = field(default_factory=list)
    tally: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # the deciding reply in full (a leader's, an editor's, …)
    # who read whose messages (reader → authors): the chain credit flows back along
    reads: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "text": self.text,
            "reads": self.reads,
            "members": [asdict(m) for m in self.members],
            "tally": self.tally,
            "detail": self.detail,
        }


ParamsT = TypeVar("ParamsT", bound=BaseModel)


@dataclass(frozen=True)
class SocietyView(Generic[ParamsT]):
    """What an organisation is given: its members and its validated parameters, typed
    as the organisation's own parameter model (`SocietyView[VoteParams]`)."""

    members: list[Member]
    params: ParamsT

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def group(self, name: str) -> list[Member]:
        """The members of one group, in society-file order."""
        return [m for m in self.members if m.group == name]


OrgRun = Generator[Round, list[Turn], Outcome]


class NoParams(Strict):
    """For organisations without parameters: any key is a typo."""


@dataclass(frozen=True)
class Organisation(Generic[ParamsT]):
    """A registered organisation: its name, parameter model and generator function; the
    generator receives its parameters already validated as that model."""

    name: str
    run: Callable[[Task, SocietyView[ParamsT]], OrgRun]
    params: type[ParamsT] = NoParams  # type: ignore[assignment]  # (then it is NoParams)
    description: str = ""
    # group name → (fewest, most) members; None: no upper bound. Checked on load.
    groups: dict[str, tuple[int, int | None]] = field(
        default_factory=lambda: {"member": (1, None)}
    )
    # parameters that name agents are checked against them on load: (params, the society
    # file's agent names) → None, or (the parameter's field, what is wrong with it)
    check: Callable[[ParamsT, list[str]], tuple[str, str] | None] | None = None


def advance(gen: OrgRun, turns: list[Turn] | None) -> Round | Outcome:
    """One step of an organisation: send it the last round's turns (None to start) and
    get its next round, or its outcome when it is done. The runner and `drive` share it."""
    try:
        return next(gen) if turns is None else gen.send(turns)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def drive(gen: OrgRun, answer: Callable[[Round], list[Turn]]) -> tuple[list[Round], Outcome]:
    """Run an organisation synchronously, with no runner and no backend: `answer(round)`
    gives each round's turns. For tests and plugin authors; returns the rounds and outcome.
    """
    rounds: list[Round] = []
    turns: list[Turn] | None = None
    while isinstance(step := advance(gen, turns), Round):
        rounds.append(step)
        turns = answer(step)
    return rounds, step
