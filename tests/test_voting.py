"""Voting rules: ballot parsing, plurality / approval / Borda counts, tie-breaks, grammars."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minsky.organisations.voting import LABELS, VoteResult, ballot_grammar, count, parse_ballot

# -- parse_ballot --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("B", 3, [1]),
        ("A, C", 3, [0, 2]),
        ("C > A > B", 3, [2, 0, 1]),
        ("c>a>b", 3, [2, 0, 1]),  # lowercase letters count
        ("b", 2, [1]),
        ("B, B, A, B", 3, [1, 0]),  # repeats count once, first position kept
        ("A > D > B", 3, [0, 1]),  # D is out of range for 3 candidates: dropped
        ("Z", 3, []),
        ("", 3, []),
        ("   ", 3, []),
        ("no letters here", 3, []),  # words are not ballots
        ("ABC", 3, []),  # letters must stand alone
        ("(B)", 3, [1]),
        ("B.", 3, [1]),
        ("A", 0, []),  # no candidates at all
    ],
)
def test_parse_ballot(text: str, n: int, expected: list[int]) -> None:
    assert parse_ballot(text, n) == expected


def test_parse_ballot_all_26_letters() -> None:
    text = " ".join(reversed(LABELS))
    assert parse_ballot(text, 26) == list(range(25, -1, -1))
    assert parse_ballot(text, 2) == [1, 0]


# -- count: hand-computed scores -----------------------------------------------------------


def test_plurality_counts_first_choices_only() -> None:
    result = count("plurality", [[0, 1], [1], [1, 0], [2]], 3)
    assert result == VoteResult("plurality", [1.0, 2.0, 1.0], 1, [1], 0)


def test_approval_counts_every_named_candidate() -> None:
    # A: 1, B: 2, C: 3
    result = count("approval", [[0, 1, 2], [1, 2], [2]], 3)
    assert result.scores == [1.0, 2.0, 3.0]
    assert result.winner == 2
    assert result.tied == [2]
    assert result.abstained == 0


def test_borda_hand_computed() -> None:
    # n=3: first place 2 points, second 1, third 0.
    # A: 2+1+0 = 3, B: 1+2+2 = 5, C: 0+0+1 = 1
    result = count("borda", [[0, 1, 2], [1, 0, 2], [1, 2, 0]], 3)
    assert result.scores == [3.0, 5.0, 1.0]
    assert result.winner == 1
    assert result.tied == [1]


def test_borda_partial_ballots_give_unnamed_zero() -> None:
    # n=4: A named first (3), B second (2); C first (3). D never named.
    result = count("borda", [[0, 1], [2]], 4)
    assert result.scores == [3.0, 2.0, 3.0, 0.0]
    assert result.winner == 0  # tie A/C goes to the lower number
    assert result.tied == [0, 2]


def test_same_ballots_different_rules_different_winners() -> None:
    ballots = [[0, 2, 1], [0, 2, 1], [1, 2, 0], [1, 2, 0], [2, 1, 0]]
    # plurality: A 2, B 2, C 1 → tie → A
    assert count("plurality", ballots, 3).winner == 0
    # approval (everyone ranks everyone): 5 each → A
    assert count("approval", ballots, 3).scores == [5.0, 5.0, 5.0]
    # borda: A 2+2+0+0+0 = 4, B 0+0+2+2+1 = 5, C 1+1+1+1+2 = 6 → C
    borda = count("borda", ballots, 3)
    assert borda.scores == [4.0, 5.0, 6.0]
    assert borda.winner == 2


@pytest.mark.parametrize("rule", ["plurality", "approval", "borda"])
def test_ties_break_to_the_lowest_index(rule: str) -> None:
    result = count(rule, [[2], [1]], 3)  # type: ignore[arg-type]
    assert result.tied == [1, 2]
    assert result.winner == 1
    # the order the ballots come in does not matter
    assert count(rule, [[1], [2]], 3).winner == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", ["plurality", "approval", "borda"])
def test_all_abstain_gives_no_winner(rule: str) -> None:
    result = count(rule, [[], [], []], 3)  # type: ignore[arg-type]
    assert result.winner is None
    assert result.tied == []
    assert result.abstained == 3
    assert result.scores == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("rule", ["plurality", "approval", "borda"])
def test_no_ballots_gives_no_winner(rule: str) -> None:
    assert count(rule, [], 2).winner is None  # type: ignore[arg-type]


def test_abstentions_are_counted_beside_real_ballots() -> None:
    result = count("plurality", [[], [1], []], 2)
    assert result.winner == 1
    assert result.abstained == 2


def test_zero_candidates() -> None:
    result = count("plurality", [[]], 0)
    assert result.winner is None
    assert result.scores == []


def test_vote_result_to_dict() -> None:
    data = count("borda", [[1, 0]], 2).to_dict()
    assert data == {"rule": "borda", "scores": [0.0, 1.0], "winner": 1, "tied": [1],
                    "abstained": 0}


# -- ballot_grammar ------------------------------------------------------------------------


def _letters_in(grammar: str) -> set[str]:
    return set(re.findall(r'"([A-Z])"', grammar))


@pytest.mark.parametrize("rule", ["plurality", "approval", "borda"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 26])
def test_ballot_grammar_names_exactly_the_first_n_letters(rule: str, n: int) -> None:
    grammar = ballot_grammar(rule, n)  # type: ignore[arg-type]
    assert "root ::=" in grammar
    assert grammar.startswith("root ::=")
    assert _letters_in(grammar) == set(LABELS[:n])


def test_ballot_grammar_shapes() -> None:
    assert ballot_grammar("plurality", 3) == 'root ::= "A" | "B" | "C"'
    assert ballot_grammar("approval", 3) == 'root ::= l (", " l){0,2}\nl ::= "A" | "B" | "C"'
    assert ballot_grammar("borda", 2) == 'root ::= l (" > " l){0,1}\nl ::= "A" | "B"'


def test_ballot_grammar_output_parses_back() -> None:
    # what each grammar admits is what parse_ballot reads
    assert parse_ballot("A, C", 3) == [0, 2]
    assert parse_ballot("C > B > A", 3) == [2, 1, 0]


# -- properties ----------------------------------------------------------------------------

RULES = st.sampled_from(["plurality", "approval", "borda"])


@st.composite
def ballots_and_n(draw: st.DrawFn) -> tuple[int, list[list[int]]]:
    n = draw(st.integers(0, 8))
    ballot = st.permutations(list(range(n))).flatmap(
        lambda p: st.integers(0, len(p)).map(lambda k: list(p[:k]))
    )
    return n, draw(st.lists(ballot, max_size=12))


@settings(max_examples=150, deadline=None)
@given(rule=RULES, data=ballots_and_n())
def test_count_never_raises_and_winner_has_the_top_score(
    rule: str, data: tuple[int, list[list[int]]]
) -> None:
    n, ballots = data
    result = count(rule, ballots, n)  # type: ignore[arg-type]
    assert len(result.scores) == n
    assert result.abstained == sum(1 for b in ballots if not b)
    if result.winner is None:
        assert result.tied == []
        assert n == 0 or all(not b for b in ballots)
    else:
        assert 0 <= result.winner < n
        assert result.scores[result.winner] == max(result.scores)
        assert result.winner == min(result.tied)
        assert all(result.scores[k] == max(result.scores) for k in result.tied)


@settings(max_examples=150, deadline=None)
@given(rule=RULES, text=st.text(max_size=40), n=st.integers(0, 26))
def test_parsed_text_always_counts(rule: str, text: str, n: int) -> None:
    ballot = parse_ballot(text, n)
    assert len(set(ballot)) == len(ballot)
    assert all(0 <= k < n for k in ballot)
    result = count(rule, [ballot], n)  # type: ignore[arg-type]
    assert result.winner is None or 0 <= result.winner < n
    if ballot:
        assert result.winner is not None
        assert result.scores[result.winner] == max(result.scores)
