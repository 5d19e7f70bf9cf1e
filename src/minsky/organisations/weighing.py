"""Weighted votes over extracted answers: abstention, weights, cross-checks, stopping.

The rules a calibrated society decides by, as pure functions over `Ballot`s, so each
rule is pinned by tests with plain values:

- a ballot whose reply was cut off (max_tokens) or whose answer could not be read — or
  whose program was rejected or failed — abstains instead of voting noise;
- each ballot weighs its group's weight times, optionally, its reply's confidence: the
  geometric-mean token probability of the whole reply or of its tail (DeepConf, arXiv
  2508.15260; CISC, arXiv 2502.06233), read off log-probabilities at no extra call;
- a reasoning answer that no program agrees with is down-weighted, once programs have
  voted (PROVE, arXiv 2410.12608: a chain of thought its program contradicts is dropped);
- ties go to the answer of the earliest ballot (the greedy member, listed first);
- two checks of an answer against its question, at no extra call: a program that never
  writes one of the quantities the question gives has probably left part of the problem
  out, and an answer that is not a whole number is rarely right where the question counts
  things (`unused_quantities`, `is_whole`; a society file weighs both, off by default);
- `settled` says whether the ballots still to come could change the winner (the stopping
  rule of Adaptive-Consistency / ESC: sample in windows, stop once the leader cannot be
  caught), so easy problems cost less.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from minsky.answers import AnswerKind, answers_match, canonical, normalise_number

Confidence = Literal["none", "mean", "tail"]
TAIL_TOKENS = 32  # the answer line and the step before it, for a 0.5B's 150–400 tokens


@dataclass(frozen=True)
class Ballot:
    """One member's vote: its answer (None abstains), group, weight and why it abstained."""

    member: str
    answer: str | None
    group: str = "member"
    weight: float = 1.0
    abstained: str | None = None  # "truncated", "no answer", "program: …"


@dataclass
class WeightedTally:
    """Scores per answer (first-seen order), the winner, and the abstentions."""

    winner: str | None
    scores: dict[str, float] = field(default_factory=dict)
    votes: dict[str, list[str]] = field(default_factory=dict)  # answer → members
    abstained: dict[str, str] = field(default_factory=dict)  # member → reason

    @property
    def margin(self) -> float:
        """The leader's lead over the runner-up (its whole score when alone)."""
        top = sorted(self.scores.values(), reverse=True)
        return top[0] - (top[1] if len(top) > 1 else 0.0) if top else 0.0

    @property
    def share(self) -> float:
        """The winner's fraction of all weight cast (0 when nobody voted)."""
        total = sum(self.scores.values())
        return self.scores[self.winner] / total if self.winner and total > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"winner": self.winner, "scores": {a: round(s, 4) for a, s in self.scores.items()},
                "votes": self.votes, "abstained": self.abstained}


def confidence(logprobs: list[float] | None, how: Confidence) -> float:
    """A reply's confidence in (0, 1]: the geometric-mean probability of its tokens
    ("mean") or of its last TAIL_TOKENS ("tail"); 1 for "none" or without log-probs."""
    if how == "none" or not logprobs:
        return 1.0
    part = logprobs[-TAIL_TOKENS:] if how == "tail" else logprobs
    return math.exp(sum(part) / len(part))


def cross_check(ballots: list[Ballot], checked: str, checker: str, factor: float,
                kind: AnswerKind = "number") -> list[Ballot]:
    """Ballots of group `checked` whose answer no voting ballot of group `checker` gave get
    their weight times `factor`; nothing changes while no `checker` ballot has voted."""
    checks = [b.answer for b in ballots if b.group == checker and b.answer is not None]
    if not checks or factor == 1.0:
        return ballots
    out = []
    for b in ballots:
        if (b.group == checked and b.answer is not None
                and not any(answers_match(b.answer, c, kind) for c in checks)):
            b = Ballot(b.member, b.answer, b.group, b.weight * factor, b.abstained)
        out.append(b)
    return out


def weigh(ballots: list[Ballot], kind: AnswerKind = "number") -> WeightedTally:
    """Sum the weights per answer (answers that `answers_match` share a bucket, named by
    the first seen); the top score wins, ties going to the answer seen first."""
    tally = WeightedTally(None)
    for b in ballots:
        answer = None if b.answer is None else canonical(b.answer, kind)
        if answer is None or b.abstained:
            tally.abstained[b.member] = b.abstained or "no answer"
            continue
        rep = next((r for r in tally.scores if answers_match(r, answer, kind)), answer)
        tally.scores[rep] = tally.scores.get(rep, 0.0) + b.weight
        tally.votes.setdefault(rep, []).append(b.member)
    if tally.scores:
        top = max(tally.scores.values())
        tally.winner = next(a for a, s in tally.scores.items() if s == top)
    return tally


def settled(tally: WeightedTally, remaining: float) -> bool:
    """Whether `remaining` more weight, all cast for the runner-up, could not overtake the
    leader (a tie counts as caught, since a later tie-break might differ)."""
    return tally.winner is not None and tally.margin > remaining


# a quantity in a question: digits with thousands commas and a decimal part ("1,200.50")
_QUESTION_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d])")
# a number literal in a program: no thousands commas there ("max(3,4)" is two numbers)
_PROGRAM_NUMBER = re.compile(r"(?<![\w.])(\d[\d_]*)(\.\d+)?")


def _values(pattern: re.Pattern[str], text: str) -> set[Fraction]:
    out = set()
    for m in pattern.finditer(text):
        digits = m[1].replace(",", "").replace("_", "") + (m[2] or "")
        if len(digits) <= 30:  # a quantity, not a pasted blob of digits
            out.add(Fraction(digits))
    return out


@lru_cache(maxsize=64)  # every program of one question reads the same question
def _quantities(question: str) -> frozenset[Fraction]:
    return frozenset(_values(_QUESTION_NUMBER, question))


def unused_quantities(question: str, program: str) -> int:
    """How many of the quantities a question writes in digits a program never writes
    (as itself, or a percentage as its hundredth, or a hundredth as its percentage)."""
    written = _values(_PROGRAM_NUMBER, program)
    return sum(1 for q in _quantities(question) if not {q, q / 100, q * 100} & written)


def is_whole(answer: str | None) -> bool:
    """Whether an answer is a whole number (-3, 0, 12, 12.0); False for anything else."""
    n = normalise_number(answer) if answer is not None else None
    if n is None:
        return False
    try:
        return Fraction(n).denominator == 1
    except (ValueError, ZeroDivisionError):
        return False


def copies_answer(question: str, program: str, answer: str) -> bool:
    """Whether a program writes `answer` as a literal that the question does not give: a
    program asked with the answer as a hint that just returns it teaches nothing (STaR's
    rationalization keeps only programs that compute the hint)."""
    n = normalise_number(answer)
    if n is None:
        return False
    try:
        # literals are read unsigned: "return -5" writes 5 (and a question's "-5" gives 5)
        value = abs(Fraction(n))
    except (ValueError, ZeroDivisionError):
        return False
    return value in _values(_PROGRAM_NUMBER, program) and value not in _quantities(question)
