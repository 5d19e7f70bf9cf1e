"""Tests for the economy ledger: hand-computed balances, every refusal, and conservation
properties over random sequences of operations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from minsky.economy.ledger import BURN, ENV, ESCROW, Entry, Ledger, LedgerError


def make(**endowments: int) -> tuple[Ledger, list[Entry]]:
    seen: list[Entry] = []
    ledger = Ledger(sink=seen.append)
    for name, cents in endowments.items():
        ledger.open(name, cents)
    return ledger, seen


def test_open_endows_from_environment() -> None:
    ledger, seen = make(A=1000, B=0)
    assert ledger.balance("A") == 1000 and ledger.balance("B") == 0
    assert ledger.active == ["A", "B"]
    assert [(e.kind, e.src, e.dst, e.amount) for e in seen] == [("endow", ENV, "A", 1000)]
    assert ledger.entries == seen and ledger.total() == 1000


@pytest.mark.parametrize("name", ["", "@environment", "@me"])
def test_open_refuses_bad_names(name: str) -> None:
    with pytest.raises(LedgerError, match="invalid member name"):
        Ledger().open(name)


@pytest.mark.parametrize("cents", [-1, 1.5, True, "10"])
def test_open_refuses_bad_endowment(cents: Any) -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError, match="endowment"):
        ledger.open("A", cents)
    assert ledger.entries == [] and ledger.active == []


def test_open_refuses_existing_member() -> None:
    ledger, _ = make(A=10)
    with pytest.raises(LedgerError, match="already has a wallet"):
        ledger.open("A", 5)
    assert ledger.balance("A") == 10


def test_reward_with_tax_hand_computed() -> None:
    ledger, seen = make(A=1000)
    assert ledger.reward("A", 500, "solved task", tax_rate=0.2, run_id="r1", round=3) == 100
    assert ledger.balance("A") == 1400
    audit = ledger.audit()
    assert audit["conserved"] and audit["expected_total"] == 1400 == audit["actual_total"]
    assert audit["by_kind"]["reward"] == 500 and audit["by_kind"]["tax"] == 100
    reward, tax = seen[-2:]
    assert (reward.kind, reward.src, reward.dst, reward.amount) == ("reward", ENV, "A", 500)
    assert (tax.kind, tax.src, tax.dst, tax.amount) == ("tax", "A", BURN, 100)
    assert tax.run_id == reward.run_id == "r1" and tax.round == 3
    assert reward.to_dict()["reason"] == "solved task" and reward.to_dict()["seq"] == 1


def test_reward_tax_is_exact_and_floored() -> None:
    ledger, _ = make(A=0)
    assert ledger.reward("A", 100, "x", tax_rate=0.29) == 29  # not 28 from float error
    assert ledger.reward("A", 99, "x", tax_rate=0.5) == 49  # floor
    assert ledger.reward("A", 7, "x") == 0  # no tax, no tax entry
    assert [e.kind for e in ledger.entries] == ["reward", "tax", "reward", "tax", "reward"]
    assert ledger.balance("A") == 100 - 29 + 99 - 49 + 7


@pytest.mark.parametrize(
    ("who", "amount", "rate", "match"),
    [
        ("Z", 10, 0.0, "unknown member"),
        ("A", 0, 0.0, "> 0"),
        ("A", -5, 0.0, "> 0"),
        ("A", 2.5, 0.0, "integer number of cents"),
        ("A", 10, -0.1, "tax_rate"),
        ("A", 10, 1.5, "tax_rate"),
        ("A", 10, float("nan"), "tax_rate"),
    ],
)
def test_reward_refusals(who: str, amount: Any, rate: float, match: str) -> None:
    ledger, _ = make(A=10)
    with pytest.raises(LedgerError, match=match):
        ledger.reward(who, amount, "x", tax_rate=rate)
    assert len(ledger.entries) == 1 and ledger.balance("A") == 10


def test_transfer_conserves() -> None:
    ledger, _ = make(A=300, B=50)
    ledger.transfer("A", "B", 120, "summary service", round=1)
    assert (ledger.balance("A"), ledger.balance("B")) == (180, 170)
    ledger.transfer("A", "B", 180, "all of it")  # down to exactly zero is fine
    assert ledger.balance("A") == 0 and ledger.total() == 350 and ledger.audit()["conserved"]


@pytest.mark.parametrize(
    ("src", "dst", "amount", "match"),
    [
        ("A", "B", 101, "has only 100"),
        ("A", "B", 0, "> 0"),
        ("A", "B", -3, "> 0"),
        ("A", "A", 5, "itself"),
        ("A", "Z", 5, "unknown"),
        ("Z", "A", 5, "unknown"),
        ("A", ENV, 5, "unknown"),
    ],
)
def test_transfer_refusals(src: str, dst: str, amount: int, match: str) -> None:
    ledger, _ = make(A=100, B=0)
    with pytest.raises(LedgerError, match=match):
        ledger.transfer(src, dst, amount, "x")
    assert (ledger.balance("A"), ledger.balance("B"), len(ledger.entries)) == (100, 0, 1)


def test_charge_burns_and_may_go_negative() -> None:
    ledger, _ = make(A=100)
    ledger.charge("A", 30, "rent", "round rent")
    ledger.charge("A", 90, "fee", "900 tokens")
    assert ledger.balance("A") == -20
    audit = ledger.audit()
    assert audit["by_kind"]["rent"] == 30 and audit["by_kind"]["fee"] == 90
    assert audit["expected_total"] == -20 == audit["actual_total"] and audit["conserved"]
    assert ledger.entries[-1].dst == BURN


def test_charge_refusals() -> None:
    ledger, _ = make(A=100)
    for args, match in [
        (("A", 5, "tax", "x"), "rent' or 'fee"),
        (("A", 0, "rent", "x"), "> 0"),
        (("Z", 5, "fee", "x"), "unknown"),
    ]:
        with pytest.raises(LedgerError, match=match):
            ledger.charge(*args)
    assert ledger.balance("A") == 100 and len(ledger.entries) == 1


def test_settle_bankruptcies() -> None:
    ledger, _ = make(A=10, B=10, C=10)
    ledger.charge("A", 11, "rent", "x")
    ledger.charge("C", 10, "rent", "x")  # exactly zero is not bankrupt
    assert ledger.settle_bankruptcies() == ["A"]
    assert ledger.settle_bankruptcies() == []
    assert ledger.active == ["B", "C"] and ledger.bankrupt == {"A"}
    assert ledger.balance("A") == -1  # the debt stays on the books
    assert ledger.total() == 9 and ledger.audit()["conserved"]


def test_bankrupt_member_never_acts_again() -> None:
    ledger, _ = make(A=10, B=100)
    ledger.escrow("B", "c1", 5)
    ledger.escrow("A", "c2", 5)
    ledger.charge("A", 20, "fee", "x")
    assert ledger.settle_bankruptcies() == ["A"]
    before = ledger.entries
    attempts = [
        lambda: ledger.open("A", 10),
        lambda: ledger.reward("A", 10, "x"),
        lambda: ledger.transfer("A", "B", 1, "x"),
        lambda: ledger.transfer("B", "A", 1, "x"),
        lambda: ledger.charge("A", 1, "rent", "x"),
        lambda: ledger.charge("A", 1, "fee", "x"),
        lambda: ledger.birth("A", "A2", 0.5),
        lambda: ledger.birth("B", "A", 0.5),
        lambda: ledger.escrow("A", "c3", 1),
        lambda: ledger.release("c1", "A"),
        lambda: ledger.refund("c2"),  # its payer is bankrupt
    ]
    for attempt in attempts:
        with pytest.raises(LedgerError, match="bankrupt|already has"):
            attempt()
    assert ledger.entries == before and ledger.bankrupt == {"A"}
    assert ledger.release("c2", "B") == 5  # its escrow can still pay a live provider
    assert ledger.refund("c1") == 5 and ledger.audit()["conserved"]


def test_birth_gives_share_of_wealth() -> None:
    ledger, seen = make(A=1001)
    assert ledger.birth("A", "A.1", 0.3, round=2) == 300
    assert (ledger.balance("A"), ledger.balance("A.1")) == (701, 300)
    assert ledger.active == ["A", "A.1"]
    gift = seen[-1]
    assert (gift.kind, gift.src, gift.dst, gift.amount, gift.round) == ("gift", "A", "A.1", 300, 2)
    assert ledger.audit()["conserved"]


@pytest.mark.parametrize(
    ("parent", "child", "share", "match"),
    [
        ("A", "B", 0.5, "already has a wallet"),
        ("A", "A", 0.5, "already has a wallet"),
        ("A", "C", 0.0, "share"),
        ("A", "C", 1.0, "share"),
        ("A", "C", -0.2, "share"),
        ("Z", "C", 0.5, "unknown"),
        ("B", "C", 0.5, "no money"),
        ("A", "@x", 0.5, "invalid member name"),
    ],
)
def test_birth_refusals(parent: str, child: str, share: float, match: str) -> None:
    ledger, _ = make(A=100, B=1)
    with pytest.raises(LedgerError, match=match):
        ledger.birth(parent, child, share)
    assert ledger.active == ["A", "B"] and ledger.balance("A") == 100 and len(ledger.entries) == 2


def test_escrow_release_once() -> None:
    ledger, _ = make(A=100, B=0)
    ledger.escrow("A", "job-1", 40)
    assert ledger.balance("A") == 60 and ledger.escrow_held() == 40 and ledger.total() == 100
    assert ledger.entries[-1].contract == "job-1" and ledger.entries[-1].dst == ESCROW
    assert ledger.release("job-1", "B") == 40
    assert (ledger.balance("B"), ledger.escrow_held()) == (40, 0)
    for settle in (lambda: ledger.release("job-1", "B"), lambda: ledger.refund("job-1")):
        with pytest.raises(LedgerError, match="already settled"):
            settle()
    assert ledger.audit()["conserved"]


def test_escrow_refund_once() -> None:
    ledger, _ = make(A=100, B=0)
    ledger.escrow("A", "job-1", 40)
    assert ledger.refund("job-1") == 40 and ledger.balance("A") == 100
    with pytest.raises(LedgerError, match="already settled"):
        ledger.refund("job-1")
    with pytest.raises(LedgerError, match="already settled"):
        ledger.release("job-1", "B")
    assert [e.kind for e in ledger.entries] == ["endow", "escrow", "refund"]


def test_escrow_refusals() -> None:
    ledger, _ = make(A=100, B=0)
    ledger.escrow("A", "c", 10)
    for attempt, match in [
        (lambda: ledger.escrow("A", "d", 91), "has only 90"),
        (lambda: ledger.escrow("A", "c", 1), "already exists"),
        (lambda: ledger.escrow("A", "d", 0), "> 0"),
        (lambda: ledger.escrow("Z", "d", 1), "unknown"),
        (lambda: ledger.release("nope", "B"), "no such contract"),
        (lambda: ledger.refund("nope"), "no such contract"),
        (lambda: ledger.release("c", "A"), "use refund"),
        (lambda: ledger.release("c", "Z"), "unknown"),
    ]:
        with pytest.raises(LedgerError, match=match):
            attempt()
    assert ledger.balance("A") == 90 and ledger.escrow_held() == 10 and len(ledger.entries) == 2


def test_bankrupt_provider_gets_refund_only() -> None:
    ledger, _ = make(A=100, B=5)
    ledger.escrow("A", "c", 50)
    ledger.charge("B", 6, "rent", "x")
    ledger.settle_bankruptcies()
    with pytest.raises(LedgerError, match="bankrupt"):
        ledger.release("c", "B")
    assert ledger.refund("c") == 50 and ledger.balance("A") == 100


def test_balance_of_unknown_member() -> None:
    with pytest.raises(LedgerError, match="unknown member 'X'"):
        Ledger().balance("X")


def test_replay_rebuilds_balances_and_contracts() -> None:
    ledger, _ = make(A=500, B=0, C=0)
    ledger.reward("A", 200, "x", tax_rate=0.1)
    ledger.transfer("A", "B", 100, "x")
    ledger.escrow("A", "c1", 50)
    ledger.escrow("A", "c2", 20)
    ledger.release("c1", "C")
    ledger.birth("B", "B.1", 0.5)
    again = Ledger.replay(ledger.entries)
    for m in ledger.active:
        assert again.balance(m) == ledger.balance(m)
    assert again.escrow_held() == 20 and again.total() == ledger.total()
    assert again.refund("c2") == 20  # the open contract was rebuilt too
    with pytest.raises(LedgerError, match="already settled"):
        again.release("c1", "B")


def test_audit_catches_a_wallet_changed_without_entry() -> None:
    ledger, _ = make(A=100)
    ledger._balances["A"] += 1  # tampering, the thing the audit must catch
    audit = ledger.audit()
    assert not audit["conserved"] and audit["replay_mismatches"] == {"A": (101, 100)}
    assert audit["expected_total"] == 100 and audit["actual_total"] == 101


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 5},
        {"amount": 0},
        {"amount": 1.5},
        {"kind": "loan"},
        {"src": "B"},  # endow must come from the environment
        {"dst": BURN},
    ],
)
def test_replay_refuses_malformed_entries(change: dict[str, Any]) -> None:
    ledger, _ = make(A=100)
    with pytest.raises(LedgerError, match="entry"):
        Ledger.replay([replace(ledger.entries[0], **change)])


def test_replay_refuses_release_without_escrow() -> None:
    bad = Entry(0, "release", ESCROW, "A", 5, "x", contract="c")
    with pytest.raises(LedgerError, match="no such contract"):
        Ledger.replay([bad])
    with pytest.raises(LedgerError, match="without a contract"):
        Ledger.replay([replace(bad, contract=None)])


# ---------------------------------------------------------------- property tests
NAMES = st.sampled_from(["A", "B", "C", "D", "E", "F"])
CONTRACTS = st.sampled_from(["k1", "k2", "k3", "k4"])
CENTS = st.integers(min_value=-5, max_value=400)
# Small amounts, so that transfers and escrows often succeed and charges sometimes bankrupt.
SMALL = st.one_of(st.integers(min_value=-2, max_value=0), st.integers(min_value=1, max_value=120))
RATES = st.sampled_from([0.0, 0.1, 0.2, 0.29, 0.5, 1.0, 1.5])
SHARES = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.99, 1.0])


class LedgerMachine(RuleBasedStateMachine):
    """Random operations, refused or not; the invariants must hold after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Entry] = []
        self.ledger = Ledger(sink=self.seen.append)
        self.went_bankrupt_at: dict[str, int] = {}  # member -> number of entries at bankruptcy

    def attempt(self, operation: Any, *args: Any, **kwargs: Any) -> None:
        before = (self.ledger.entries, {m: self.ledger.balance(m) for m in self.ledger.active})
        try:
            operation(*args, **kwargs)
        except LedgerError:
            # A refusal changes nothing at all.
            after = (self.ledger.entries, {m: self.ledger.balance(m) for m in self.ledger.active})
            assert after == before

    @initialize(endowments=st.lists(st.integers(0, 500), min_size=3, max_size=3))
    def founders(self, endowments: list[int]) -> None:
        for member, cents in zip("ABC", endowments, strict=True):
            self.ledger.open(member, cents)

    @rule(member=NAMES, cents=CENTS)
    def open(self, member: str, cents: int) -> None:
        self.attempt(self.ledger.open, member, cents)

    @rule(member=NAMES, cents=CENTS, rate=RATES, rnd=st.integers(0, 9))
    def reward(self, member: str, cents: int, rate: float, rnd: int) -> None:
        self.attempt(self.ledger.reward, member, cents, "r", tax_rate=rate, round=rnd)

    @rule(src=NAMES, dst=NAMES, cents=SMALL)
    def transfer(self, src: str, dst: str, cents: int) -> None:
        self.attempt(self.ledger.transfer, src, dst, cents, "t", run_id="run")

    @rule(member=NAMES, cents=SMALL, kind=st.sampled_from(["rent", "fee"]))
    def charge(self, member: str, cents: int, kind: str) -> None:
        self.attempt(self.ledger.charge, member, cents, kind, "c")

    @rule()
    def settle(self) -> None:
        for member in self.ledger.settle_bankruptcies():
            assert self.ledger.balance(member) < 0
            self.went_bankrupt_at[member] = len(self.ledger.entries)
        assert all(
            self.ledger.balance(m) >= 0 for m in self.ledger.active if m in self.ledger.active
        )

    @rule(parent=NAMES, share=SHARES, child=NAMES)
    def birth(self, parent: str, share: float, child: str) -> None:
        self.attempt(self.ledger.birth, parent, child, share)

    @rule(payer=NAMES, contract=CONTRACTS, cents=SMALL)
    def escrow(self, payer: str, contract: str, cents: int) -> None:
        self.attempt(self.ledger.escrow, payer, contract, cents)

    @rule(contract=CONTRACTS, to=NAMES)
    def release(self, contract: str, to: str) -> None:
        self.attempt(self.ledger.release, contract, to)

    @rule(contract=CONTRACTS)
    def refund(self, contract: str) -> None:
        self.attempt(self.ledger.refund, contract)

    @invariant()
    def conserved(self) -> None:
        entries = self.ledger.entries
        created = sum(e.amount for e in entries if e.kind in ("endow", "reward"))
        destroyed = sum(e.amount for e in entries if e.kind in ("tax", "rent", "fee"))
        assert self.ledger.total() == created - destroyed
        audit = self.ledger.audit()
        assert audit["conserved"], audit
        assert audit["expected_total"] == audit["actual_total"] == self.ledger.total()

    @invariant()
    def replay_matches(self) -> None:
        again = Ledger.replay(self.ledger.entries)
        for member in set(self.ledger.active) | self.ledger.bankrupt:
            assert self.ledger.balance(member) == again._balances.get(member, 0)
        assert again.escrow_held() == self.ledger.escrow_held() >= 0

    @invariant()
    def entries_are_sound(self) -> None:
        entries = self.ledger.entries
        assert entries == self.seen  # the sink received exactly the entries
        assert [e.seq for e in entries] == list(range(len(entries)))
        assert all(isinstance(e.amount, int) and e.amount > 0 for e in entries)
        for member, at in self.went_bankrupt_at.items():
            assert all(member not in (e.src, e.dst) for e in entries[at:])
        assert set(self.ledger.active).isdisjoint(self.ledger.bankrupt)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
