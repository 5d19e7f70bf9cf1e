"""The Economy of Minds between tasks: pay, assign credit, charge, evict, give birth.

After each task a society answers, `settle` applies the society's economic rules to the
ledger (`minsky.economy.ledger`), in this order:

1. **Reward.** A correct outcome earns `reward` cents from the environment, taxed at
   `tax_rate`, shared by the credit-assignment rule (`minsky.economy.credit`):
   `bucket_brigade` (the members whose answer was the decision are paid, and pass a share
   back along who-read-whom), `leave_one_out` or `shapley` (shares by counterfactual
   value of each member's answer to the vote), or `equal`.
2. **Costs of living.** Rent per round a member took part in, and a fee per generated
   token, both burnt: verbose or idle members lose money.
3. **Bankruptcy.** A member below zero leaves the society for good.
4. **Children.** A member above `birth_threshold` (while the population is below
   `max_members`) has a child: a copy of itself whose sampling temperature is nudged,
   given `birth_share` of its wealth.

With `contracts` on, a member that got the task wrong then buys advice from one that got
it right, under a legal authority (`minsky.economy.services`).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from minsky.economy.credit import bucket_brigade, leave_one_out, shapley, split
from minsky.economy.ledger import Ledger, LedgerError
from minsky.messages import Options
from minsky.prompts import render
from minsky.runner import Runner, RunResult
from minsky.society import AgentSpec
from minsky.strict import Strict


class EconomyConfig(Strict):
    """The economy's rules; money in cents."""

    endowment: int = Field(1000, ge=0)
    reward: int = Field(1000, ge=0, description="paid for a correct outcome")
    tax_rate: float = Field(0.1, ge=0, le=1)
    rent: int = Field(25, ge=0, description="per round a member took part in")
    token_price: float = Field(0.1, ge=0, description="cents per generated token")
    credit: Literal["bucket_brigade", "leave_one_out", "shapley", "equal", "leader"] = (
        "bucket_brigade"
    )
    share: float = Field(0.5, ge=0, le=1, description="bucket brigade: share passed back")
    birth_threshold: int = Field(3000, ge=1)
    birth_share: float = Field(0.3, gt=0, lt=1)
    max_members: int = Field(12, ge=1)
    mutation: float = Field(0.2, ge=0, description="a child's temperature change, at most")
    mutate_role: bool = Field(False, description="the parent's model proposes the child's role")
    contracts: bool = Field(False, description="members trade advice under a legal authority")
    advice_price: int = Field(100, gt=0, description="cents a wrong member pays for advice")
    authority: str = Field("authority", min_length=1,
                           description="the society (built-in or file) that rules on contracts")


def participation(result: RunResult) -> tuple[dict[str, int], dict[str, int]]:
    """Rounds each member was asked in, and tokens each generated, from a run's rounds."""
    rounds: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for rec in result.rounds:
        for name in {t["agent"] for t in rec.turns}:
            rounds[name] = rounds.get(name, 0) + 1
        for t in rec.turns:
            tokens[t["agent"]] = tokens.get(t["agent"], 0) + t["completion_tokens"]
    return rounds, tokens


def credit_weights(result: RunResult, gold: str, cfg: EconomyConfig) -> dict[str, float]:
    """Who the environment's payment goes to first, by the credit rule."""
    outcome = result.outcome
    answers = {m.name: m.answer for m in outcome.members}
    kind = result.kind
    if cfg.credit == "leave_one_out":
        return leave_one_out(answers, gold, kind)
    if cfg.credit == "shapley":
        return shapley(answers, gold, kind)
    if cfg.credit in ("equal", "leader"):  # (a leader's own split is passed to settle)
        return dict.fromkeys(answers, 1.0)
    # bucket brigade: the members who said what was decided are paid first
    return {n: float(a is not None and a == outcome.answer) for n, a in answers.items()}


def parse_allocation(text: str, names: list[str]) -> dict[str, float]:
    """A leader's allocation, "name: 40" lines (percentages or any weights); unknown names
    and unreadable lines are ignored."""
    weights: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"\s*[-*]?\s*([\w.-]+)\s*[:=]\s*(\d+(?:\.\d+)?)\s*%?", line)
        if m and m[1] in names:
            weights[m[1]] = weights.get(m[1], 0.0) + float(m[2])
    return weights


async def leader_weights(runner: Runner, leader: AgentSpec, result: RunResult) -> dict[str, float]:
    """Credit by judgement: the leader splits the reward among the members (one logged
    call, a run under the task's run)."""
    from minsky.economy.calls import consult

    names = [m.name for m in result.outcome.members]
    members = [{"name": m.name, "answer": m.answer, "said": " ".join(m.text.split())[-200:]}
               for m in result.outcome.members]
    ask = render("leader_split", answer=result.outcome.answer, members=members)
    options = leader.options.model_copy(update={"max_tokens": 16 * len(names) + 16})
    text, _ = await consult(runner, leader, ask, "leader split", options, result.run_id)
    return parse_allocation(text, names)


def settle(
    ledger: Ledger, cfg: EconomyConfig, result: RunResult, correct: bool, gold: str,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Apply one task's economics; returns what happened, for the report and the log.

    `weights` overrides the credit rule (the leader's allocation, computed beforehand).
    """
    ctx: dict[str, Any] = {"run_id": result.run_id}
    active = set(ledger.active)
    events: dict[str, Any] = {"paid": {}, "transfers": [], "charged": {}, "refused": []}
    if correct and cfg.reward:
        given = weights if weights is not None else credit_weights(result, gold, cfg)
        weights = {n: w for n, w in given.items() if n in active}
        for name, cents in split(cfg.reward, weights).items():
            if cents > 0:
                tax = ledger.reward(name, cents, "correct outcome", cfg.tax_rate, **ctx)
                events["paid"][name] = cents - tax
        if cfg.credit == "bucket_brigade":
            reads = {k: [v for v in vs if v in active] for k, vs in result.outcome.reads.items()}
            for payer, payee, cents in bucket_brigade(events["paid"], reads, cfg.share):
                try:
                    ledger.transfer(payer, payee, cents, "bucket brigade: read its messages",
                                    **ctx)
                    events["transfers"].append((payer, payee, cents))
                except LedgerError as err:
                    events["refused"].append(str(err))
    rounds, tokens = participation(result)
    for name in ledger.active:
        rent = cfg.rent * rounds.get(name, 0)
        fee = math.ceil(tokens.get(name, 0) * cfg.token_price)
        if rent:
            ledger.charge(name, rent, "rent", f"rent for {rounds[name]} round(s)", **ctx)
        if fee:
            ledger.charge(name, fee, "fee", f"{tokens[name]} generated tokens", **ctx)
        events["charged"][name] = rent + fee
    events["bankrupt"] = ledger.settle_bankruptcies()
    return events


def births(
    ledger: Ledger, cfg: EconomyConfig, agents: list[AgentSpec], rng: random.Random,
    run_id: str | None = None,
) -> list[AgentSpec]:
    """Children of the members above the threshold, richest first, within the bound."""
    by_name = {a.name: a for a in agents}
    children: list[AgentSpec] = []
    rich = sorted((n for n in ledger.active if ledger.balance(n) >= cfg.birth_threshold
                   and n in by_name), key=lambda n: (-ledger.balance(n), n))
    for parent in rich:
        if len(ledger.active) >= cfg.max_members:
            break
        k = 1
        while f"{parent}.{k}" in by_name or f"{parent}.{k}" in ledger.bankrupt or \
                any(c.name == f"{parent}.{k}" for c in children):
            k += 1
        name = f"{parent}.{k}"
        ledger.birth(parent, name, cfg.birth_share, run_id=run_id)
        spec = by_name[parent]
        temperature = max(0.0, spec.options.temperature
                          + rng.uniform(-cfg.mutation, cfg.mutation))
        options = spec.options.model_copy(update={
            "temperature": round(temperature, 3),
            "seed": rng.randrange(2**31),
        })
        children.append(replace(spec, name=name, options=options))
    return children


async def mutate_role(runner: Runner, child: AgentSpec, parent: str | None = None) -> AgentSpec:
    """The child with a role prompt its parent's model proposed (one logged call, a run
    under `parent`); unchanged if the proposal is empty or the call fails."""
    from minsky.economy.calls import consult

    options = Options(temperature=0.7, max_tokens=96, seed=child.options.seed)
    # no role of its own: the parent's model answers as itself, not in the role it rewrites
    text, _ = await consult(runner, replace(child, role=""),
                            render("mutate_role", role=child.role), "mutate role", options,
                            parent)
    role = " ".join(text.split()).strip('"')
    if len(role) < 10:
        return child
    return replace(child, role=role)
