"""Pairwise judgement: which of two answers to a question is better, asked in both orders.

One home for the judging that the arena (contestants judged by a judge society) and the
organisations (drafts judged by a member) share: the MT-Bench pairwise prompt, the
verdict of a pair judged in both orders (a verdict that flips with the order is a tie,
because judges prefer the answer they read first), and a tournament of drafts.

Inside a society the judge is asked for one letter — A, B, or C for a tie — read from its
log-probabilities where the backend gives them (one prefill, no decoding), else from the
letter it writes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from dataclasses import dataclass

from minsky.answers import extract_answer
from minsky.messages import Message
from minsky.organisations.base import Ask, Member, Round, Turn
from minsky.prompts import render

PAIR_TEMPLATE = {
    "system_prompt": (
        "Please act as an impartial judge and evaluate the quality of the responses provided "
        "by two AI assistants to the user question displayed below. Choose the assistant that "
        "follows the user's instructions and answers the user's question better. Avoid any "
        "position biases; do not let the length of the responses or the names of the "
        "assistants influence you."
    ),
    "prompt_template": (
        "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
        "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
        "[The End of Assistant B's Answer]"
    ),
}
VERDICTS = "ABC"  # A: the first answer shown, B: the second, C: a tie
CHOICE_PREFIX = "The answer is"


def judge_question(template: dict[str, str], question: str, a: str, b: str,
                   constitution: str | None) -> str:
    """The text a judge is asked: A, B, or C for a tie."""
    system = template["system_prompt"]
    # MT-Bench's own output instruction ([[A]]) gives way to minsky's choice format
    system = system.split("After providing your explanation")[0].strip()
    body = template["prompt_template"].format(question=question, answer_a=a, answer_b=b)
    rules = f"\n\nJudge by these principles:\n{constitution.strip()}" if constitution else ""
    # the three verdicts as lettered option lines, so a judging society can also score
    # them as a choice question (consensus reads options off "A) …" lines)
    return (f"{system}{rules}\n\n{body}\n\nWhich answer is better?\n"
            "A) Assistant A's answer\nB) Assistant B's answer\nC) A tie")


def combine(ab: str | None, ba: str | None) -> tuple[float, bool]:
    """Score of the first contestant from the two orders' verdicts, and whether it flipped.

    `ab` is the verdict with the first contestant shown as A, `ba` with it shown as B.
    """
    first = {"A": 1.0, "B": 0.0}.get(ab or "", 0.5)
    second = {"B": 1.0, "A": 0.0}.get(ba or "", 0.5)
    if first == second:
        return first, False
    flipped = {first, second} == {0.0, 1.0}
    return 0.5, flipped


def letter_logprobs(top: dict[str, float], letters: str) -> list[float] | None:
    """Log-probabilities of each letter among a position's likeliest tokens (" A", "A"
    and "(A" count as A), over the letters' total; a letter not listed gets the least
    listed probability; None when no letter is there."""
    mass = [0.0] * len(letters)
    for piece, lp in top.items():
        key = piece.strip().lstrip("(")  # case matters: " a" is an article, not option A
        if len(key) == 1 and key in letters:
            mass[letters.index(key)] += math.exp(lp)
    total = sum(mass)
    if total <= 0:
        return None
    # a letter not among the likeliest is at most as likely as the least likely listed
    floor = math.exp(min(top.values()))
    return [math.log(max(m, floor) / total) for m in mass]


@dataclass
class Game:
    """Drafts `a` and `b` judged in both orders: the verdicts, the score of `a`, and the
    margin (log P(a better) − log P(b better), summed over both orders; 0 without
    log-probabilities) that breaks a tie."""

    a: int
    b: int
    ab: str | None
    ba: str | None
    score: float
    flipped: bool
    margin: float

    def to_dict(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "ab": self.ab, "ba": self.ba, "score": self.score,
                "flipped": self.flipped, "margin": round(self.margin, 4)}


def _judge_ask(judge: Member, text: str) -> Ask:
    messages = [Message("system", judge.role),
                Message("user", render("judge_pair", judgement=text))]
    return Ask(judge.name, messages, purpose="judge", prefix=CHOICE_PREFIX,
               options=judge.options.model_copy(update={
                   "temperature": 0.0, "max_tokens": 1, "top_logprobs": 20, "stop": []}))


def _letter_mass(top: dict[str, float]) -> float:
    return sum(math.exp(lp) for piece, lp in top.items()
               if piece.strip().lstrip("(") in tuple(VERDICTS))


def _verdict(turn: Turn) -> tuple[str | None, float]:
    """The letter a judge gave and log P(A) − log P(B); a failed call is no verdict."""
    if turn.reply.finish_reason == "error":
        return None, 0.0
    top = turn.reply.top_logprobs[0] if turn.reply.top_logprobs else None
    # the first position speaks for the letters only where they are most of it: after
    # " **" or ":" a 1 % letter is noise, and the letter written is the verdict
    scores = letter_logprobs(top, VERDICTS) if top and _letter_mass(top) >= 0.5 else None
    if scores is None:
        return extract_answer(turn.text, "choice", VERDICTS), 0.0
    return VERDICTS[max(range(3), key=lambda k: scores[k])], scores[0] - scores[1]


def judge_pairs(question: str, drafts: list[str], pairs: list[tuple[int, int]], judge: Member,
                label: str, constitution: str | None = None,
                template: dict[str, str] = PAIR_TEMPLATE
                ) -> Generator[Round, list[Turn], list[Game]]:
    """Judge each pair of drafts in both orders, in one round; returns the games."""
    asks = []
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            asks.append(_judge_ask(judge, judge_question(template, question, drafts[x],
                                                         drafts[y], constitution)))
    turns = yield Round(label, asks)
    games = []
    for i, (a, b) in enumerate(pairs):
        (ab, m1), (ba, m2) = _verdict(turns[2 * i]), _verdict(turns[2 * i + 1])
        score, flipped = combine(ab, ba)
        games.append(Game(a, b, ab, ba, score, flipped, m1 - m2))
    return games


def tournament(question: str, drafts: list[str], judge: Member, how: str = "round_robin",
               constitution: str | None = None
               ) -> Generator[Round, list[Turn], tuple[int, list[Game]]]:
    """The best of `drafts` by pairwise judgement: a round robin (every pair, one round)
    or a knockout (the winner so far meets the next draft, one round each). Returns the
    winner's index and the games. Points decide (a win 1, a tie ½), then the summed
    margin, then the earlier draft (the greedy one comes first)."""
    if len(drafts) < 2:
        return 0, []
    if how == "knockout":
        best, games = 0, list[Game]()
        for nxt in range(1, len(drafts)):
            (game,) = yield from judge_pairs(question, drafts, [(best, nxt)], judge,
                                             f"judge {nxt}", constitution)
            games.append(game)
            if game.score < 0.5 or (game.score == 0.5 and game.margin < 0):
                best = nxt
        return best, games
    pairs = list(itertools.combinations(range(len(drafts)), 2))
    games = yield from judge_pairs(question, drafts, pairs, judge, "judge", constitution)
    points = [0.0] * len(drafts)
    margins = [0.0] * len(drafts)
    for g in games:
        points[g.a] += g.score
        points[g.b] += 1 - g.score
        margins[g.a] += g.margin
        margins[g.b] -= g.margin
    best = max(range(len(drafts)), key=lambda k: (points[k], margins[k], -k))
    return best, games
