"""Services and contracts between members, checked by a legal authority.

A member offers a service at a price and another accepts: that is a `Contract` (parties,
service, price, deadline). Before it binds, a legal authority — a society of its own,
reading a written rule book — rules whether it is valid and enforceable. A valid
contract's price goes into escrow; delivery releases it to the provider; a dispute is
ruled by the authority (refund or release), and a contract whose deadline passes
undelivered is refunded. The mechanical rules are checked first, with no model call: no
party may judge its own contract (a conflict of interest), parties must be active
members, the price positive and affordable, the deadline ahead.

Every ruling is reported through `on_ruling`, which the economy runner logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from minsky.economy.ledger import Context, Ledger
from minsky.prompts import render
from minsky.runner import Runner
from minsky.society import Society
from minsky.strict import Strict

RULE_BOOK = render("rule_book")  # the default rule book, a prompt template


class Contract(Strict):
    """A service one member sells another."""

    id: str
    client: str
    provider: str
    service: str = Field(min_length=1)
    price: int = Field(gt=0, description="cents")
    deadline: int = Field(ge=0, description="the task by which it must be delivered")


@dataclass(frozen=True)
class Ruling:
    """The authority's decision on a contract or a dispute."""

    contract: str
    question: Literal["validity", "dispute", "deadline"]
    decision: str  # validity: "valid" / "invalid"; dispute: "refund" / "release"
    reason: str
    by: str  # "rules" for the mechanical checks, else the authority society's name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Market:
    """Contracts under one ledger and one legal authority."""

    def __init__(
        self,
        ledger: Ledger,
        runner: Runner,
        authority: Society,
        rule_book: str = RULE_BOOK,
        on_ruling: Callable[[Ruling], None] | None = None,
    ) -> None:
        self.ledger, self.runner, self.authority = ledger, runner, authority
        self.rule_book = rule_book
        self.on_ruling = on_ruling
        self.contracts: dict[str, Contract] = {}
        self.state: dict[str, str] = {}  # id → "escrowed" / "delivered" / "refunded"
        # the run the market's entries belong to (the task being settled), for the log
        self.ctx: Context = {}

    def _rule(self, ruling: Ruling) -> Ruling:
        if self.on_ruling:
            self.on_ruling(ruling)
        return ruling

    def _mechanical(self, c: Contract, now: int) -> str | None:
        judges = {a.name for a in self.authority.agents}
        if judges & {c.client, c.provider}:
            party = sorted(judges & {c.client, c.provider})[0]
            return f"conflict of interest: {party} would judge its own contract"
        if c.client == c.provider:
            return "a member cannot contract with itself"
        if c.id in self.contracts:
            return f"contract id {c.id} is taken"
        for party in (c.client, c.provider):
            if party not in self.ledger.active:
                return f"{party} is not an active member"
        if c.deadline < now:
            return f"the deadline (task {c.deadline}) has passed"
        if self.ledger.balance(c.client) < c.price:
            return f"{c.client} cannot afford {c.price} (has {self.ledger.balance(c.client)})"
        return None

    async def _ask(self, question: str) -> tuple[str | None, str]:
        # a run under the task being settled, so `logs show` lists the rulings' calls
        result = await self.runner.beneath(self.ctx.get("run_id")).run(
            self.authority, question, "choice")
        return result.answer, result.outcome.text or (
            result.outcome.members[0].text if result.outcome.members else "")

    async def propose(self, contract: Contract, now: int = 0) -> Ruling:
        """Rule on a contract; a valid one binds and its price goes into escrow."""
        problem = self._mechanical(contract, now)
        if problem:
            return self._rule(Ruling(contract.id, "validity", "invalid", problem, "rules"))
        verdict, why = await self._ask(render("ruling_validity", rule_book=self.rule_book,
                                              c=contract))
        decision = "valid" if verdict == "A" else "invalid"
        if decision == "valid":
            self.contracts[contract.id] = contract
            self.ledger.escrow(contract.client, contract.id, contract.price,
                               f"contract {contract.id}: {contract.service[:60]}", **self.ctx)
            self.state[contract.id] = "escrowed"
        return self._rule(Ruling(contract.id, "validity", decision, why.strip()[:500],
                                 self.authority.name))

    def _open(self, contract_id: str) -> Contract:
        if self.state.get(contract_id) != "escrowed":
            raise KeyError(f"contract {contract_id} is not open "
                           f"({self.state.get(contract_id, 'unknown')})")
        return self.contracts[contract_id]

    def deliver(self, contract_id: str) -> None:
        """The service was delivered: the provider is paid from escrow."""
        c = self._open(contract_id)
        self.ledger.release(contract_id, c.provider, "delivered", **self.ctx)
        self.state[contract_id] = "delivered"

    async def dispute(self, contract_id: str, claim: str) -> Ruling:
        """The client says the service was not delivered: the authority rules."""
        c = self._open(contract_id)
        verdict, why = await self._ask(render("ruling_dispute", rule_book=self.rule_book,
                                              c=c, claim=claim))
        if verdict == "A":
            self.ledger.refund(contract_id, "dispute: not delivered", **self.ctx)
            self.state[contract_id], decision = "refunded", "refund"
        else:
            self.ledger.release(contract_id, c.provider, "dispute: delivered", **self.ctx)
            self.state[contract_id], decision = "delivered", "release"
        return self._rule(Ruling(contract_id, "dispute", decision, why.strip()[:500],
                                 self.authority.name))

    def expire(self, now: int) -> list[str]:
        """Refund every open contract whose deadline has passed undelivered (rule 6)."""
        late = [i for i, s in self.state.items()
                if s == "escrowed" and self.contracts[i].deadline < now]
        for contract_id in late:
            self.ledger.refund(contract_id, "deadline passed undelivered", **self.ctx)
            self.state[contract_id] = "refunded"
            self._rule(Ruling(contract_id, "deadline", "refund",
                              "deadline passed undelivered", "rules"))
        return late
