"""`critique`: an author drafts, critics read the draft against a constitution, the author
revises (Constitutional AI's critique-and-revise, arXiv 2212.08073).

Round 1: the author answers. Then, up to `rounds` times: every critic reads the current
answer against the constitution's principles and names the principle it breaks, or says
"No change."; when no critic asks for a change the loop stops, otherwise the author
revises with the critiques in its own conversation (a backend with a prefix cache decodes
only the new turn). A critic that answers off-format (no "Principle: NAME" line naming a
principle, and no "No change.") asks for nothing: small models often ramble, and an
unactionable critique is not a reason to rewrite.

The constitution is a TOML file of `[[principles]]` (`name`, `text`) or a text file of
one `name: text` line per principle; `prompts/constitution.toml` ships as the default.
Every revision is kept as a preference pair (revision chosen over the answer it revised)
in the outcome's detail, for `minsky star prefs`.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from minsky.answers import extract_answer
from minsky.errors import MinskyError
from minsky.inputs.limits import load_toml
from minsky.messages import Message
from minsky.organisations.answering import follow_up, solve_messages
from minsky.organisations.base import (
    Ask,
    Member,
    MemberAnswer,
    Organisation,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Task,
    Turn,
)
from minsky.prompts import render
from minsky.strict import Strict, error_line

MAX_CONSTITUTION_BYTES = 64_000  # far above any real list of principles
MAX_PRINCIPLES = 32


class Principle(Strict):
    """One principle: a short name a critic cites, and what it asks of an answer."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[^\n:]+$")
    text: str = Field(min_length=1, max_length=1000)


class Constitution(Strict):
    """The principles answers are read against."""

    principles: list[Principle] = Field(min_length=1, max_length=MAX_PRINCIPLES)
    source: str = "default"  # where it came from (not a key of the file)

    @field_validator("principles")
    @classmethod
    def _distinct(cls, principles: list[Principle]) -> list[Principle]:
        names = [p.name.lower() for p in principles]
        if len(set(names)) < len(names):
            raise ValueError("two principles share a name; a critic cites them by name")
        return principles

    def text(self) -> str:
        """The principles as lines ("- name: text"), as a judge or critic is told."""
        return "\n".join(f"- {p.name}: {p.text}" for p in self.principles)

    def find(self, text: str) -> Principle | None:
        """The principle `text` begins by naming, as a whole word (case, quotes and
        emphasis ignored; the longest name first, so "correct" is not "correctness")."""
        key = text.strip().lstrip("*`\"'")
        for p in sorted(self.principles, key=lambda p: -len(p.name)):
            if re.match(re.escape(p.name) + r"(?!\w)", key, re.IGNORECASE):
                return p
        return None


def _from_text(text: str) -> dict[str, Any]:
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        rows.append({"name": name.strip(), "text": rest.strip()} if sep else
                    {"name": f"principle {len(rows) + 1}", "text": line})
    return {"principles": rows}


def load_constitution(path: Path) -> Constitution:
    """A constitution file: TOML (`[[principles]]` with `name`, `text`) or, for any other
    suffix, one `name: text` line per principle. A problem is one line naming the file
    and the field."""
    try:
        if path.exists() and not path.is_file():  # a FIFO or a device: blocks or never ends
            raise MinskyError(f"constitution file {path}: not a regular file")
        with path.open("rb") as f:
            blob = f.read(MAX_CONSTITUTION_BYTES + 1)
        if len(blob) > MAX_CONSTITUTION_BYTES:
            raise MinskyError(f"constitution file {path}: larger than "
                              f"{MAX_CONSTITUTION_BYTES} bytes")
        raw = blob.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MinskyError(f"constitution file {path}: cannot read it: "
                          f"{getattr(err, 'strerror', None) or err}") from None
    where = f"constitution file {path}"
    data = load_toml(raw, where) if path.suffix == ".toml" else _from_text(raw)
    if "source" in data:
        raise MinskyError(f"{where}: field 'source': unknown key; expected only 'principles'")
    try:
        return Constitution.model_validate({**data, "source": str(path)}, strict=True)
    except ValidationError as err:
        unknown = any(e["type"] == "extra_forbidden" for e in err.errors())
        hint = "; expected 'principles' (a list of tables with 'name' and 'text')"
        raise MinskyError(error_line(err, where) + (hint if unknown else "")) from None


@cache
def default_constitution() -> Constitution:
    """The constitution that ships with minsky (`prompts/constitution.toml`)."""
    text = resources.files("minsky.prompts").joinpath("constitution.toml").read_text("utf-8")
    return Constitution.model_validate({**load_toml(text, "constitution.toml"),
                                        "source": "default"})


def constitution_field(value: object, info: ValidationInfo) -> object:
    """A `constitution` parameter as written: "default", a file path (relative to the
    society file, where validation is given its folder as `base`), or the table."""
    if value == "default":
        return default_constitution()
    if isinstance(value, str):
        path = Path(value).expanduser()
        base = (info.context or {}).get("base")
        return load_constitution(path if path.is_absolute() or base is None
                                 else Path(base) / path)
    return value


class CritiqueParams(Strict):
    rounds: int = Field(2, ge=1, le=8, description="most critique-and-revise rounds")
    constitution: Constitution = Field(
        default_factory=default_constitution,
        description='"default", or a TOML/text file of principles')

    _file = field_validator("constitution", mode="before")(constitution_field)


@dataclass
class Critique:
    """One critic's reading of one answer: the principle it says is broken (None: no
    change asked), its text, and whether it kept the format."""

    critic: str
    principle: str | None
    text: str
    verdict: str  # "change", "no change", "off-format", "failed"

    def to_dict(self) -> dict[str, object]:
        return {"critic": self.critic, "principle": self.principle, "verdict": self.verdict,
                "text": self.text}


# "Principle: NAME" at the start of a line (after any bullet or emphasis), colon required
_PRINCIPLE = re.compile(r"^[\W_]*principle\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_NO_CHANGE = re.compile(r"\bno\s+changes?\b", re.IGNORECASE)
_OPENS_NO_CHANGE = re.compile(r"^[\W_]*no\s+changes?\b", re.IGNORECASE)


def read_critique(critic: str, turn: Turn, constitution: Constitution) -> Critique:
    """What a critic's reply asks: the first "Principle: NAME" naming a principle is a
    change; otherwise "No change." is none; anything else is off-format (asks nothing)."""
    text = turn.text.strip()
    if turn.reply.finish_reason == "error":
        return Critique(critic, None, text, "failed")
    if _OPENS_NO_CHANGE.match(text):  # what follows is why nothing needs to change
        return Critique(critic, None, text, "no change")
    for m in _PRINCIPLE.finditer(text):
        named = m.group(1).lstrip(" *`\"'")
        if (found := constitution.find(named)) is not None:
            rest = named[len(found.name):].lstrip(" *`\"'.:,;-—–")
            body = "\n".join(x for x in (rest, text[m.end():].strip()) if x)
            return Critique(critic, found.name, body or text, "change")
    if _NO_CHANGE.search(text):
        return Critique(critic, None, text, "no change")
    return Critique(critic, None, text, "off-format")


def _critic_ask(critic: Member, task: Task, answer: str, constitution: Constitution) -> Ask:
    text = render("critique", principles=constitution.principles, question=task.question,
                  answer=answer)
    return Ask(critic.name, [Message("system", critic.role), Message("user", text)],
               purpose="critique",
               options=critic.options.model_copy(update={"temperature": 0.0,
                                                         "max_tokens": 160}))


CritiqueSteps = Generator[Round, list[Turn], tuple[str, list[dict[str, Any]],
                                                   list[dict[str, Any]], str]]


def critique_and_revise(task: Task, author: Member, critics: list[Member],
                        messages: list[Message], draft: str, constitution: Constitution,
                        rounds: int) -> CritiqueSteps:
    """Critique `draft` (the author's reply to `messages`) and let the author revise, up to
    `rounds` times. Returns the final answer text, the critique records, the preference
    pairs (revision over what it revised) and why it stopped."""
    current = draft
    records: list[dict[str, Any]] = []
    prefs: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        turns = yield Round(f"critique {r}", [_critic_ask(c, task, current, constitution)
                                              for c in critics])
        said = [read_critique(c.name, t, constitution)
                for c, t in zip(critics, turns, strict=True)]
        records += [{"round": r, **c.to_dict()} for c in said]
        asked = [c for c in said if c.verdict == "change"]
        if not asked:
            verdicts = {c.verdict for c in said}
            return current, records, prefs, ("no change" if verdicts == {"no change"}
                                              else "nothing to act on")
        fix = render("revise_answer", critiques=asked, kind=task.kind,
                     choices=list(task.choices))
        (turn,) = yield Round(f"revise {r}", [Ask(author.name, follow_up(messages, current, fix),
                                                  purpose="revise")])
        if turn.reply.finish_reason == "error" or not turn.text.strip():
            return current, records, prefs, "revision failed"
        if turn.reply.finish_reason == "length":  # cut off: not better than a whole answer
            return current, records, prefs, "revision truncated"
        if turn.text.strip() == current.strip():
            return current, records, prefs, "unchanged"
        prefs.append({"source": "revision", "round": r,
                      "prompt": [asdict(m) for m in messages],
                      "chosen": turn.text, "rejected": current,
                      "principles": sorted({c.principle or "" for c in asked})})
        current = turn.text
    return current, records, prefs, "rounds"


def roles(members: list[Member]) -> tuple[Member, list[Member]]:
    """The author (group "author", else the first member) and the critics (group
    "critic", else every other member; the author alone critiques itself)."""
    author = next((m for m in members if m.group == "author"), members[0])
    critics = [m for m in members if m.group == "critic"] or [
        m for m in members if m is not author and m.group not in ("author", "judge")
    ] or [author]
    return author, critics


def critique(task: Task, society: SocietyView[CritiqueParams]) -> OrgRun:
    p = society.params
    author, critics = roles(society.members)
    messages = solve_messages(author, task)
    (turn,) = yield Round("draft", [Ask(author.name, messages, purpose="answer")])
    if turn.reply.finish_reason == "error":
        return Outcome(None, [MemberAnswer(author.name, None, turn.text)],
                       detail={"path": "critique", "stopped": "draft failed"})
    final, records, prefs, why = yield from critique_and_revise(
        task, author, critics, messages, turn.text, p.constitution, p.rounds)
    answer = extract_answer(final, task.kind, task.choices)
    revisions = len(prefs)
    return Outcome(answer, [MemberAnswer(author.name, answer, final, 1 + revisions)],
                   text=final,
                   detail={"path": "critique", "revisions": revisions, "stopped": why,
                           "critiques": records, "draft": turn.text,
                           "constitution": p.constitution.source, "preferences": prefs},
                   reads={author.name: sorted({c.name for c in critics} - {author.name})})


CRITIQUE = Organisation(
    "critique", critique, CritiqueParams,
    "an author drafts; critics read the draft against a constitution; the author revises "
    "until no critic asks for a change",
    groups={"author": (0, 1), "critic": (0, None), "member": (0, None)},
)

__all__ = ["CRITIQUE", "Constitution", "CritiqueParams", "Principle", "critique",
           "critique_and_revise", "default_constitution", "load_constitution",
           "read_critique"]
