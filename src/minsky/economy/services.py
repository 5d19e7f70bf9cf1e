"""A market in advice: between tasks, a member that got a task wrong buys advice.

The service is real and checkable. After a task, a member whose answer was wrong (the
poorest that can pay) offers `advice_price` cents to the richest member whose answer
was right, for a sentence or two of method for problems like this one. The contract goes
to the legal authority (`minsky.economy.contracts`); if it binds, the provider's model
writes the advice (one call) and delivery is checked: advice of at least
`_MIN_ADVICE` characters releases the escrow, anything less is disputed by the client
and ruled on by the authority. Bought advice is appended to the client's role prompt
(the latest `_KEEP` pieces), so what it paid for shapes its next answers.

Cost in calls per task with a trade: one authority ruling, one provider call, and one
more ruling when a delivery is disputed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from minsky.economy.calls import consult
from minsky.economy.contracts import Contract, Market
from minsky.evals.formats import score
from minsky.plugin_api import Case
from minsky.prompts import render
from minsky.runner import Runner, RunResult
from minsky.society import AgentSpec

_MIN_ADVICE = 20  # characters: less is not advice, the client disputes it
_KEEP = 2  # pieces of bought advice a member keeps in its role prompt
_ADVICE_TOKENS = 96
_SEPARATOR = "\n\nAdvice you bought from "


def base_role(role: str) -> str:
    """A role prompt without the advice appended to it."""
    return role.split(_SEPARATOR, 1)[0]


def with_advice(spec: AgentSpec, provider: str, advice: str) -> AgentSpec:
    """`spec` whose role ends with this advice and at most `_KEEP - 1` earlier pieces."""
    pieces = spec.role.split(_SEPARATOR)
    kept = pieces[1:][-(_KEEP - 1):] if _KEEP > 1 else []
    role = pieces[0] + "".join(_SEPARATOR + p for p in [*kept, f"{provider}: {advice}"])
    return replace(spec, role=role)


def parties(
    case: Case, result: RunResult, members: list[AgentSpec], market: Market, price: int
) -> tuple[str, str] | None:
    """(client, provider) for this task, or None: someone wrong who can pay, someone right."""
    active = set(market.ledger.active)
    answers = {m.name: m.answer for m in result.outcome.members if m.name in active}
    correct = {a.name: score(case, answers[a.name]) for a in members if a.name in answers}
    balance = market.ledger.balance
    right = [n for n, ok in correct.items() if ok]
    wrong = [n for n, ok in correct.items() if not ok and balance(n) >= price]
    if not right or not wrong:
        return None
    client = min(wrong, key=lambda n: (balance(n), n))
    provider = max(right, key=lambda n: (balance(n), n))
    return client, provider


async def trade_advice(
    market: Market, runner: Runner, case: Case, result: RunResult,
    members: list[AgentSpec], price: int, now: int,
) -> tuple[dict[str, Any] | None, list[AgentSpec]]:
    """Run one advice trade after task `now`; returns its record and the updated members."""
    pair = parties(case, result, members, market, price)
    if pair is None:
        return None, members
    client, provider = pair
    contract = Contract(
        id=f"t{now}-{client}", client=client, provider=provider, price=price, deadline=now,
        service=f"advice from {provider}, who solved task {case.id}, to {client}, who did "
                "not: one or two sentences of method for problems like it",
    )
    record: dict[str, Any] = {"contract": contract.id, "client": client,
                              "provider": provider, "price": price}
    ruling = await market.propose(contract, now)
    record["validity"] = ruling.decision
    if ruling.decision != "valid":
        return record, members
    by_name = {a.name: a for a in members}
    solution = next(m.text for m in result.outcome.members if m.name == provider)
    spec = by_name[provider]
    ask = render("advice", question=case.question, solution=" ".join(solution.split())[-800:])
    options = spec.options.model_copy(update={"max_tokens": _ADVICE_TOKENS})
    text, _ = await consult(runner, replace(spec, role=base_role(spec.role)), ask,
                                "advice", options, market.ctx.get("run_id"))
    advice = " ".join(text.split())
    if len(advice) >= _MIN_ADVICE:
        market.deliver(contract.id)
        record.update(delivered=True, advice=advice)
        return record, [with_advice(a, provider, advice) if a.name == client else a
                        for a in members]
    claim = (f"I paid for advice and received {advice!r}, "
             f"which is {'nothing' if not advice else 'not advice'}.")
    dispute = await market.dispute(contract.id, claim)
    record.update(delivered=False, advice=advice, dispute=dispute.decision)
    return record, members
