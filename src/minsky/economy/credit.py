"""Credit assignment: who in a society deserves the environment's payment?

Three ways, as the NLSOM paper lists them:

- **Bucket brigade** (Holland 1985; Schmidhuber's neural bucket brigade): a member that
  was paid passes a share of it to the members whose messages it read, and they pass a
  share of that on, back along the chain of who-read-whom recorded in the outcome
  (`Outcome.reads`). Costs no model calls.
- **Counterfactuals**: a member's value is how much the decision's correctness drops
  without it — leave-one-out, or its Shapley value estimated over sampled orders.
  Computed here for decisions that are a vote over the members' answers, which can be
  re-decided from the logged answers: no model calls. (For a decision a leader or an
  editor writes, each counterfactual would cost a re-run of the deciding round: one call
  per member for leave-one-out, one per coalition for Shapley; not done here.)
- **Judgement**: a leader allocates the budget by its own judgement (one model call; see
  the economy runner).

Money is integer cents; `split` shares an amount by weights without losing a cent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from minsky.answers import AnswerKind, answers_match, tally_votes


def split(amount: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Share `amount` cents in proportion to the positive weights (largest remainder);
    with no positive weight, equally. The parts always add up to `amount`."""
    names = list(weights)
    if not names or amount <= 0:
        return {n: 0 for n in names}
    positive = {n: max(0.0, float(w)) for n, w in weights.items()}
    total = sum(positive.values())
    if total == 0:
        positive, total = {n: 1.0 for n in names}, float(len(names))
    exact = {n: amount * positive[n] / total for n in names}
    parts = {n: int(exact[n]) for n in names}
    left = amount - sum(parts.values())
    # the cents lost to rounding go to the largest remainders, ties in name order
    for n in sorted(names, key=lambda n: (-(exact[n] - parts[n]), names.index(n)))[:left]:
        parts[n] += 1
    return parts


def bucket_brigade(
    income: Mapping[str, int], reads: Mapping[str, Sequence[str]], share: float = 0.5,
    depth: int = 5,
) -> list[tuple[str, str, int]]:
    """Transfers (payer, payee, cents): each paid member passes `share` of what it got, in
    equal parts, to the members it read; they pass on a share of that, up to `depth` hops."""
    transfers: list[tuple[str, str, int]] = []
    wave = {m: a for m, a in income.items() if a > 0}
    for _ in range(depth):
        nxt: dict[str, int] = {}
        for member, amount in wave.items():
            sources = [s for s in reads.get(member, ()) if s != member]
            if not sources:
                continue
            for payee, cents in split(int(amount * share), dict.fromkeys(sources, 1.0)).items():
                if cents > 0:
                    transfers.append((member, payee, cents))
                    nxt[payee] = nxt.get(payee, 0) + cents
        if not nxt:
            break
        wave = nxt
    return transfers


def vote_value(answers: Sequence[str | None], gold: str, kind: AnswerKind = "number") -> float:
    """1.0 if the plurality of `answers` (ties to the first given) is right, else 0.0."""
    if not answers:
        return 0.0
    return float(answers_match(tally_votes(list(answers), kind).winner, gold, kind))


def leave_one_out(
    answers: Mapping[str, str | None], gold: str, kind: AnswerKind = "number"
) -> dict[str, float]:
    """Each member's value: the vote's correctness with it minus without it."""
    names = list(answers)
    full = vote_value([answers[n] for n in names], gold, kind)
    return {
        n: full - vote_value([answers[o] for o in names if o != n], gold, kind) for n in names
    }


def shapley(
    answers: Mapping[str, str | None], gold: str, kind: AnswerKind = "number",
    samples: int = 200, seed: int = 0,
) -> dict[str, float]:
    """Shapley values of the members for the vote's correctness, from `samples` random
    orders (exact in expectation; the values add up to the full society's value)."""
    names = list(answers)
    rng = random.Random(seed)
    totals = dict.fromkeys(names, 0.0)
    for _ in range(samples):
        order = list(names)
        rng.shuffle(order)
        before = 0.0
        for k, n in enumerate(order, 1):
            coalition = set(order[:k])
            # the vote's tie-break depends on order, so a coalition keeps society order
            value = vote_value([answers[o] for o in names if o in coalition], gold, kind)
            totals[n] += value - before
            before = value
    return {n: t / samples for n, t in totals.items()}
