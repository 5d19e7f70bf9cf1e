"""Voting rules over a fixed list of candidates: plurality, approval and Borda.

Candidates are numbered 0..n-1 in the order they were first proposed; every rule breaks
ties towards the lowest number, so the same ballots always give the same winner. Ballots
come from small models as text ("B", "A, C", "C > A > B") and are parsed leniently:
unknown letters are dropped, repeats count once, an empty ballot abstains.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass
from typing import Any, Literal

Rule = Literal["plurality", "approval", "borda"]
LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class VoteResult:
    """Scores per candidate, the winner, and who tied for first."""

    rule: Rule
    scores: list[float]
    winner: int | None
    tied: list[int]
    abstained: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_ballot(text: str, n: int) -> list[int]:
    """The candidate numbers a ballot names, in order, each once (letters A.. → 0..)."""
    seen: list[int] = []
    for letter in re.findall(r"\b([A-Z])\b", text.upper()):
        k = LABELS.index(letter)
        if k < n and k not in seen:
            seen.append(k)
    return seen


def count(rule: Rule, ballots: list[list[int]], n: int) -> VoteResult:
    """Count parsed ballots under `rule`.

    plurality: the first candidate named gets 1 point. approval: every candidate named
    gets 1. borda: with n candidates, the i-th named gets n-1-i points; unnamed get 0.
    """
    scores = [0.0] * n
    abstained = 0
    for ballot in ballots:
        if not ballot:
            abstained += 1
            continue
        if rule == "plurality":
            scores[ballot[0]] += 1
        elif rule == "approval":
            for k in ballot:
                scores[k] += 1
        else:
            for i, k in enumerate(ballot):
                scores[k] += n - 1 - i
    if n == 0 or abstained == len(ballots):
        return VoteResult(rule, scores, None, [], abstained)
    top = max(scores)
    tied = [k for k, s in enumerate(scores) if s == top]
    return VoteResult(rule, scores, tied[0], tied, abstained)


def ballot_grammar(rule: Rule, n: int) -> str:
    """A GBNF grammar for a well-formed ballot over n candidates."""
    letter = " | ".join(f'"{c}"' for c in LABELS[:n])
    if rule == "plurality":
        return f"root ::= {letter}"
    sep = '", "' if rule == "approval" else '" > "'
    return f"root ::= l ({sep} l){{0,{max(0, n - 1)}}}\nl ::= {letter}"
