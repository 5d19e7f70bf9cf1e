"""Contracts under a legal authority: mechanical checks, rulings, escrow, disputes."""

from __future__ import annotations

import pytest

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.economy.contracts import Contract, Market, Ruling
from minsky.economy.ledger import Ledger
from minsky.runner import Runner
from minsky.society import from_dict


def authority(reply: str, name: str = "judge"):
    society = from_dict({"name": "court", "organisation": "single", "model": "fake:j",
                         "agents": [{"name": name}]}, "court.toml")
    backend = FunctionBackend(lambda r: reply)
    return society, Runner(Backends(overrides={"fake:j": backend})), backend


def market(reply: str = "The answer is A.", judge: str = "judge"):
    ledger = Ledger()
    for member in ("alice", "bob", judge):
        ledger.open(member, 1000)
    society, runner, backend = authority(reply, judge)
    rulings: list[Ruling] = []
    return Market(ledger, runner, society, on_ruling=rulings.append), ledger, rulings, backend


def contract(**kw) -> Contract:
    base = {"id": "k1", "client": "alice", "provider": "bob", "service": "check my sums",
            "price": 300, "deadline": 2}
    return Contract(**{**base, **kw})


async def test_a_valid_contract_binds_and_pays_on_delivery() -> None:
    m, ledger, rulings, backend = market()
    ruling = await m.propose(contract())
    assert (ruling.decision, ruling.by) == ("valid", "court")
    assert ledger.balance("alice") == 700 and ledger.escrow_held() == 300
    assert "Rule book:" in backend.requests[0].messages[-1].content
    m.deliver("k1")
    assert ledger.balance("bob") == 1300 and ledger.escrow_held() == 0
    assert rulings == [ruling]
    with pytest.raises(KeyError, match="not open"):
        m.deliver("k1")


async def test_the_authority_can_void_a_contract() -> None:
    m, ledger, _, _ = market("The answer is B.")
    ruling = await m.propose(contract(service="buy bob's vote"))
    assert ruling.decision == "invalid"
    assert ledger.balance("alice") == 1000 and "k1" not in m.contracts


@pytest.mark.parametrize("kw, reason", [
    ({"client": "judge"}, "conflict of interest: judge would judge its own contract"),
    ({"provider": "alice"}, "cannot contract with itself"),
    ({"price": 5000}, "alice cannot afford 5000"),
    ({"deadline": 0}, "deadline (task 0) has passed"),
    ({"provider": "carol"}, "carol is not an active member"),
])
async def test_mechanical_rules_need_no_model(kw, reason) -> None:
    m, _, rulings, backend = market()
    ruling = await m.propose(contract(**kw), now=1)
    assert ruling.decision == "invalid" and reason in ruling.reason and ruling.by == "rules"
    assert backend.requests == []  # refused before any model call
    assert rulings == [ruling]


async def test_disputes_and_deadlines_refund() -> None:
    m, ledger, rulings, _ = market()
    await m.propose(contract())
    ruling = await m.dispute("k1", "bob never checked anything")  # the judge answers "A"
    assert ruling.decision == "refund" and ledger.balance("alice") == 1000
    await m.propose(contract(id="k2"))
    assert m.expire(now=3) == ["k2"]
    assert ledger.balance("alice") == 1000 and ledger.audit()["conserved"]
    assert [r.decision for r in rulings] == ["valid", "refund", "valid", "refund"]
