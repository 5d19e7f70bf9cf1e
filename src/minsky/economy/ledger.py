"""The ledger of the economy of minds: integer-cent wallets whose every change is an entry.

Money is conserved. It is created only by the environment (endowments and rewards), destroyed
only by rent, taxes and token fees, and otherwise only moves between accounts (transfers, gifts
to children, contract escrow). The ledger is the only code that changes a balance, and it does
so only by posting an :class:`Entry`, so replaying the entries rebuilds every balance exactly;
:meth:`Ledger.audit` checks both facts.

Amounts are integer cents: floats would let rounding create or destroy money.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Literal, TypedDict, Unpack

ENV = "@environment"  # where created money comes from
BURN = "@burn"  # where destroyed money goes
ESCROW = "@escrow"  # holds contract payments until they are released or refunded

Kind = Literal[
    "endow", "reward", "transfer", "rent", "tax", "fee", "escrow", "release", "refund", "gift"
]
KINDS: frozenset[str] = frozenset(Kind.__args__)  # type: ignore[attr-defined]

# Where each kind of entry may take money from and give it to ("member" is any member).
# Replay checks entries against this, so a forged or corrupted log is refused, not absorbed.
_SHAPES: dict[str, tuple[str, str]] = {
    "endow": (ENV, "member"),
    "reward": (ENV, "member"),
    "transfer": ("member", "member"),
    "gift": ("member", "member"),
    "rent": ("member", BURN),
    "tax": ("member", BURN),
    "fee": ("member", BURN),
    "escrow": ("member", ESCROW),
    "release": (ESCROW, "member"),
    "refund": (ESCROW, "member"),
}
_CREATED = ("endow", "reward")
_DESTROYED = ("tax", "rent", "fee")


@dataclass(frozen=True)
class Entry:
    """One movement of money: ``amount`` cents from ``src`` to ``dst``."""

    seq: int
    kind: Kind
    src: str
    dst: str
    amount: int
    reason: str
    run_id: str | None = None
    round: int | None = None
    # Which contract an escrow/release/refund entry belongs to, so replay can rebuild contracts.
    contract: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the entry (for the run log)."""
        return asdict(self)


class Context(TypedDict, total=False):
    """Where an entry happened, passed as ``**ctx`` to operations and kept on the entry."""

    run_id: str | None
    round: int | None


class LedgerError(Exception):
    """An operation the ledger refuses; nothing was changed."""


@dataclass
class _Contract:
    payer: str
    amount: int
    closed: bool = False


def _fraction(rate: float, name: str, *, low_open: bool, high_open: bool) -> Fraction:
    """``rate`` as an exact decimal fraction, so that e.g. 100 * 0.29 taxes 29 cents, not 28."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise LedgerError(f"{name} must be a finite number, got {rate!r}")
    value = Fraction(str(rate))
    too_low = value <= 0 if low_open else value < 0
    too_high = value >= 1 if high_open else value > 1
    if too_low or too_high:
        bounds = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise LedgerError(f"{name} must be in {bounds}, got {rate!r}")
    return value


class Ledger:
    """Member wallets in integer cents; every change is an :class:`Entry` passed to ``sink``."""

    def __init__(self, sink: Callable[[Entry], None] | None = None) -> None:
        self._sink = sink
        self._entries: list[Entry] = []
        self._balances: dict[str, int] = {}  # insertion order is opening order
        self._bankrupt: set[str] = set()
        self._escrow_held = 0
        self._contracts: dict[str, _Contract] = {}

    # ----------------------------------------------------------------- queries
    @property
    def entries(self) -> list[Entry]:
        """A copy of all entries, oldest first (a copy, so nobody can slip one in)."""
        return list(self._entries)

    @property
    def active(self) -> list[str]:
        """Members that are not bankrupt, in opening order."""
        return [m for m in self._balances if m not in self._bankrupt]

    @property
    def bankrupt(self) -> set[str]:
        """Members that went bankrupt; they can never act again."""
        return set(self._bankrupt)

    def balance(self, member: str) -> int:
        """The balance of a member in cents (readable even after bankruptcy, for audits)."""
        if member not in self._balances:
            raise LedgerError(f"unknown member {member!r}")
        return self._balances[member]

    def escrow_held(self) -> int:
        """Cents currently held in escrow for open contracts."""
        return self._escrow_held

    def total(self) -> int:
        """All money in existence: member balances (bankrupt debts included) plus escrow."""
        return sum(self._balances.values()) + self._escrow_held

    # -------------------------------------------------------------- operations
    def open(self, member: str, endowment: int = 0) -> None:
        """Open a wallet for ``member``, created with ``endowment`` cents from the environment."""
        if not isinstance(member, str) or not member or member.startswith("@"):
            raise LedgerError(f"invalid member name {member!r} (names starting '@' are reserved)")
        if member in self._bankrupt:
            raise LedgerError(f"cannot reopen {member!r}: it went bankrupt")
        if member in self._balances:
            raise LedgerError(f"cannot open {member!r}: it already has a wallet")
        self._check_amount(endowment, "endowment", allow_zero=True)
        self._balances[member] = 0
        if endowment:
            self._post("endow", ENV, member, endowment, "initial endowment")

    def reward(
        self, member: str, amount: int, reason: str, tax_rate: float = 0.0, **ctx: Unpack[Context]
    ) -> int:
        """The environment pays ``member``; tax ``floor(amount * tax_rate)`` is burnt.

        Returns the tax taken.
        """
        self._require_active(member, "receive a reward")
        self._check_amount(amount, "reward")
        tax = math.floor(amount * _fraction(tax_rate, "tax_rate", low_open=False, high_open=False))
        self._post("reward", ENV, member, amount, reason, **ctx)
        if tax:
            self._post("tax", member, BURN, tax, f"tax on: {reason}", **ctx)
        return tax

    def transfer(
        self, src: str, dst: str, amount: int, reason: str, **ctx: Unpack[Context]
    ) -> None:
        """Move ``amount`` from ``src`` to ``dst``; refused if ``src`` cannot afford it."""
        self._require_active(src, "pay")
        self._require_active(dst, "be paid")
        if src == dst:
            raise LedgerError(f"{src!r} cannot transfer to itself")
        self._check_amount(amount, "transfer")
        self._require_funds(src, amount, f"transfer {amount} to {dst!r}")
        self._post("transfer", src, dst, amount, reason, **ctx)

    def charge(
        self,
        member: str,
        amount: int,
        kind: Literal["rent", "fee"],
        reason: str,
        **ctx: Unpack[Context],
    ) -> None:
        """Burn ``amount`` of rent or token fee; may drive the balance negative (bankruptcy)."""
        if kind not in ("rent", "fee"):
            raise LedgerError(f"charge kind must be 'rent' or 'fee', got {kind!r}")
        self._require_active(member, f"pay {kind}")
        self._check_amount(amount, kind)
        self._post(kind, member, BURN, amount, reason, **ctx)

    def settle_bankruptcies(self) -> list[str]:
        """Mark every active member with a negative balance bankrupt; return them in order.

        The debt stays on the books (no write-off entry), so the audit still adds up.
        """
        broke = [m for m in self.active if self._balances[m] < 0]
        self._bankrupt.update(broke)
        return broke

    def birth(self, parent: str, child: str, share: float, **ctx: Unpack[Context]) -> int:
        """Open ``child`` with a gift of ``floor(balance(parent) * share)``; returns the gift."""
        self._require_active(parent, "have a child")
        frac = _fraction(share, "share", low_open=True, high_open=True)
        gift = math.floor(self._balances[parent] * frac)
        if gift <= 0:
            raise LedgerError(
                f"{parent!r} cannot have a child: {share} of its balance "
                f"{self._balances[parent]} is no money"
            )
        self.open(child)  # raises, changing nothing, if the child name is taken or bad
        self._post("gift", parent, child, gift, f"birth of {child}", **ctx)
        return gift

    def escrow(
        self, payer: str, contract_id: str, amount: int, reason: str = "", **ctx: Unpack[Context]
    ) -> None:
        """Hold ``amount`` of ``payer``'s money for contract ``contract_id``."""
        self._require_active(payer, "fund a contract")
        if contract_id in self._contracts:
            raise LedgerError(f"contract {contract_id!r} already exists")
        self._check_amount(amount, "escrow")
        self._require_funds(payer, amount, f"escrow {amount} for contract {contract_id!r}")
        self._contracts[contract_id] = _Contract(payer, amount)
        why = reason or f"escrow for contract {contract_id}"
        self._post("escrow", payer, ESCROW, amount, why, contract_id, **ctx)

    def release(self, contract_id: str, to: str, reason: str = "", **ctx: Unpack[Context]) -> int:
        """Pay the held money of ``contract_id`` to provider ``to``; returns the amount."""
        contract = self._open_contract(contract_id, "release")
        self._require_active(to, f"be paid for contract {contract_id!r} (refund it instead)")
        if to == contract.payer:
            raise LedgerError(f"contract {contract_id!r}: release to its payer; use refund")
        contract.closed = True
        why = reason or f"release of contract {contract_id}"
        self._post("release", ESCROW, to, contract.amount, why, contract_id, **ctx)
        return contract.amount

    def refund(self, contract_id: str, reason: str = "", **ctx: Unpack[Context]) -> int:
        """Return the held money of ``contract_id`` to its payer; returns the amount."""
        contract = self._open_contract(contract_id, "refund")
        self._require_active(contract.payer, f"be refunded contract {contract_id!r}")
        contract.closed = True
        why = reason or f"refund of contract {contract_id}"
        self._post("refund", ESCROW, contract.payer, contract.amount, why, contract_id, **ctx)
        return contract.amount

    # ------------------------------------------------------------------- audit
    def audit(self) -> dict[str, Any]:
        """Check conservation from the entries alone, and that replaying them rebuilds balances."""
        by_kind = {k: 0 for k in sorted(KINDS)}
        for e in self._entries:
            by_kind[e.kind] += e.amount
        expected = sum(by_kind[k] for k in _CREATED) - sum(by_kind[k] for k in _DESTROYED)
        actual = self.total()
        # Live vs replayed balances: a difference means a wallet changed without an entry.
        mismatches: dict[str, Any] = {}
        try:
            replayed = Ledger.replay(self._entries)
        except LedgerError as err:
            mismatches["@replay"] = str(err)
        else:
            for m in set(self._balances) | set(replayed._balances):
                live, again = self._balances.get(m, 0), replayed._balances.get(m, 0)
                if live != again:
                    mismatches[m] = (live, again)
            if replayed._escrow_held != self._escrow_held:
                mismatches[ESCROW] = (self._escrow_held, replayed._escrow_held)
        held = sum(c.amount for c in self._contracts.values() if not c.closed)
        if held != self._escrow_held:
            mismatches["@contracts"] = (self._escrow_held, held)
        return {
            "conserved": expected == actual and not mismatches,
            "expected_total": expected,
            "actual_total": actual,
            "by_kind": by_kind,
            "replay_mismatches": mismatches,
        }

    @classmethod
    def replay(cls, entries: Iterable[Entry]) -> Ledger:
        """Rebuild a ledger from entries alone (bankruptcy marks are not entries: not rebuilt)."""
        ledger = cls()
        for e in entries:
            if e.seq != len(ledger._entries):
                raise LedgerError(f"entry {e.seq} out of order (expected {len(ledger._entries)})")
            if e.kind not in KINDS:
                raise LedgerError(f"entry {e.seq}: unknown kind {e.kind!r}")
            if isinstance(e.amount, bool) or not isinstance(e.amount, int) or e.amount <= 0:
                raise LedgerError(f"entry {e.seq}: amount must be a positive int, got {e.amount!r}")
            for end, shape in zip((e.src, e.dst), _SHAPES[e.kind], strict=True):
                bad = end.startswith("@") if shape == "member" else end != shape
                if bad:
                    raise LedgerError(f"entry {e.seq}: {e.kind} cannot involve {end!r}")
            for end in (e.src, e.dst):
                if not end.startswith("@"):
                    ledger._balances.setdefault(end, 0)  # members opened with 0 have no entry
            if e.kind in ("escrow", "release", "refund"):
                ledger._replay_contract(e)
            ledger._apply(e)
            ledger._entries.append(e)
        return ledger

    # ---------------------------------------------------------------- internals
    def _replay_contract(self, e: Entry) -> None:
        cid = e.contract
        if cid is None:
            raise LedgerError(f"entry {e.seq}: {e.kind} without a contract id")
        if e.kind == "escrow":
            if cid in self._contracts:
                raise LedgerError(f"entry {e.seq}: contract {cid!r} funded twice")
            self._contracts[cid] = _Contract(e.src, e.amount)
            return
        contract = self._open_contract(cid, e.kind)
        if e.amount != contract.amount or (e.kind == "refund" and e.dst != contract.payer):
            raise LedgerError(f"entry {e.seq}: {e.kind} does not match contract {cid!r}")
        contract.closed = True

    def _post(
        self,
        kind: Kind,
        src: str,
        dst: str,
        amount: int,
        reason: str,
        contract: str | None = None,
        **ctx: Unpack[Context],
    ) -> Entry:
        """The one place balances change: build the entry, apply it, record it, hand it on."""
        entry = Entry(len(self._entries), kind, src, dst, amount, reason, contract=contract, **ctx)
        self._apply(entry)
        self._entries.append(entry)
        if self._sink is not None:
            self._sink(entry)
        return entry

    def _apply(self, e: Entry) -> None:
        # ENV and BURN are outside the economy: money appears from one and vanishes into the other.
        for end, sign in ((e.src, -1), (e.dst, 1)):
            if end == ESCROW:
                self._escrow_held += sign * e.amount
            elif end not in (ENV, BURN):
                self._balances[end] += sign * e.amount

    def _require_active(self, member: str, action: str) -> None:
        if member in self._bankrupt:
            raise LedgerError(f"{member!r} cannot {action}: it is bankrupt")
        if member not in self._balances:
            raise LedgerError(f"{member!r} cannot {action}: unknown member")

    def _require_funds(self, member: str, amount: int, action: str) -> None:
        have = self._balances[member]
        if have < amount:
            raise LedgerError(f"{member!r} cannot {action}: it has only {have}")

    def _open_contract(self, contract_id: str, action: str) -> _Contract:
        contract = self._contracts.get(contract_id)
        if contract is None:
            raise LedgerError(f"cannot {action} contract {contract_id!r}: no such contract")
        if contract.closed:
            raise LedgerError(f"cannot {action} contract {contract_id!r}: already settled")
        return contract

    @staticmethod
    def _check_amount(amount: int, what: str, *, allow_zero: bool = False) -> None:
        # bool is an int subclass and floats are not cents: refuse both.
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise LedgerError(f"{what} must be an integer number of cents, got {amount!r}")
        if amount < 0 or (amount == 0 and not allow_zero):
            raise LedgerError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {amount}")
