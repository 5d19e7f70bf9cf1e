"""Credit assignment: integer splits, the bucket brigade, counterfactual values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minsky.economy.credit import bucket_brigade, leave_one_out, shapley, split, vote_value


def test_split_by_weights_and_remainders() -> None:
    assert split(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert split(10, {"a": 3, "b": 1}) == {"a": 8, "b": 2}  # 7.5/2.5: tie → first
    assert split(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}  # no weight: equal
    assert split(10, {"a": -1, "b": 2}) == {"a": 0, "b": 10}
    assert split(0, {"a": 1}) == {"a": 0}


@given(st.integers(0, 10**9),
       st.dictionaries(st.text(min_size=1, max_size=3), st.floats(0, 100), min_size=1,
                       max_size=6))
def test_split_never_loses_a_cent(amount, weights) -> None:
    parts = split(amount, weights)
    assert sum(parts.values()) == amount and all(v >= 0 for v in parts.values())


def test_bucket_brigade_pays_back_along_the_chain() -> None:
    # the leader read the organizer, who read two experts
    reads = {"leader": ["organizer"], "organizer": ["e1", "e2"]}
    transfers = bucket_brigade({"leader": 1000}, reads, share=0.5)
    assert transfers == [("leader", "organizer", 500), ("organizer", "e1", 125),
                         ("organizer", "e2", 125)]


def test_bucket_brigade_stops_at_depth_in_cycles() -> None:
    reads = {"a": ["b"], "b": ["a"]}
    transfers = bucket_brigade({"a": 1000}, reads, share=0.5, depth=3)
    assert transfers == [("a", "b", 500), ("b", "a", 250), ("a", "b", 125)]
    assert bucket_brigade({"a": 1000}, {}, 0.5) == []


def test_counterfactual_values_of_a_vote() -> None:
    answers = {"m1": "5", "m2": "5", "m3": "7"}
    assert vote_value(list(answers.values()), "5") == 1.0
    loo = leave_one_out(answers, "5")
    # without m1 (or m2) the vote ties 5/7 and the first given wins: still right
    assert loo == {"m1": 0.0, "m2": 0.0, "m3": 0.0}
    loo = leave_one_out({"m1": "7", "m2": "5", "m3": "5"}, "5")
    # without m2 or m3: 7 and 5 tie and 7 came first: wrong
    assert loo == {"m1": 0.0, "m2": 1.0, "m3": 1.0}


def test_shapley_values_add_up_and_reward_the_right() -> None:
    answers = {"m1": "7", "m2": "5", "m3": "5"}
    values = shapley(answers, "5", samples=600, seed=1)
    assert sum(values.values()) == pytest.approx(vote_value(list(answers.values()), "5"))
    assert values["m1"] < 0 < values["m2"]
    assert values["m2"] == pytest.approx(values["m3"], abs=0.1)
