"""Tests for minsky.answers: extraction from messy small-model replies, voting, grammars."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minsky.answers import (
    Tally,
    answer_grammar,
    answers_match,
    extract_answer,
    normalise_number,
    normalise_text,
    tally_votes,
)

NUMBER_CASES = [
    ("The answer is 42", "42"),
    ("The answer is 42.", "42"),
    ("answer: $1,234.50", "1234.5"),
    ("Answer: 1,000,000 dollars", "1000000"),
    ("\\boxed{17}", "17"),
    ("So we get $\\boxed{17}$.", "17"),
    ("First \\boxed{3}, no wait, \\boxed{5}", "5"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("\\boxed{x = 12}", "12"),
    ("\\boxed{42 \\text{ cows}}", "42"),
    ("\\boxed{1{,}234}", "1234"),
    ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\n#### 72", "72"),
    ("#### 1,500", "1500"),
    ("17 * 23 = 391", "391"),
    ("= 391", "391"),
    ("He has 42 cows", "42"),
    ("It costs $5", "5"),
    ("The distance is 12 km", "12"),
    ("The discount is 50%", "50"),
    ("The temperature is -5 degrees", "-5"),
    ("The answer is \u22127", "-7"),
    ("The answer is -$3.50", "-3.5"),
    ("The value is 3.14159", "3.14159"),
    ("The answer is 3/4", "0.75"),
    ("The answer is -1/2 of the pie", "-0.5"),
    ("The answer is 1/3", "0.333333333333333"),
    ("The answer is **42**", "42"),
    ("**Answer:** 42", "42"),
    ("The answer is: **1,234**", "1234"),
    ("42.50", "42.5"),
    ("42.0", "42"),
    ("-0", "0"),
    ("The answer is 0.0", "0"),
    ("The answer is 007", "7"),
    ("3 * 14 = 42. 42 - 9 = 33. The answer is 33.", "33"),
    ("3 * 14 = 42 cows.\n42 - 9 = 33.\nSo the farmer has 33 cows left.", "33"),
    ("The answer is 33. Check: 33 + 9 = 42", "33"),
    ("The answer is 3 * 14 = 42 cows.", "42"),
    ("Final Answer: The final answer is 18. I hope it is correct.", "18"),
    ("Final answer: 18\n\nExplanation: 9 + 9 = 18, and 2 * 9 is also 18.", "18"),
    ("Answer:\n\n25", "25"),
    ("The answer is 25.\nThe answer is correct because 5 * 5 = 25 and 100/4 = 25.", "25"),
    ("To answer this, 3 apples plus 4 apples makes 7 apples.", "7"),
    (
        (
            "Step 1: Janet's ducks lay 16 eggs per day.\n"
            "Step 2: She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs remain.\n"
            "Step 3: She sells them at $2 each: 9 * 2 = $18.\n"
            "Therefore, Janet makes $18 every day."
        ),
        "18",
    ),
    (
        (
            "Let's think step by step. There are 15 trees originally. "
            "Then there were 21 trees after some more were planted. "
            "So there must have been 21 - 15 = 6. The answer is 6."
        ),
        "6",
    ),
    ("The answer is 42 - 9 = 33", "33"),
    ("x - 5 = 10 so x = 15", "15"),
    ("There were 2 groups of 12 people, i.e. 24 people in total!", "24"),
    ("The total is 1,234,567.00 dollars.", "1234567"),
    ("Between 3-4 hours", "4"),
    ("Version v1.5 has 3 bugs", "3"),
    ("The answer is 1e3", "1"),  # scientific notation is not read in free text
    ("The answer is 5 and 7", "5"),
    ("The answer is .5", "0.5"),
    ("I cannot answer that.", None),
    ("", None),
    ("No numbers here at all", None),
    ("The answer is x2", None),
    ("\\boxed{}", None),
    ("\\boxed{unknown} but earlier we had 12", "12"),
    ("\\boxed{42", "42"),  # truncated generation
    ("Divide by zero: 5/0", None),
    ("On 1/20/2024 nothing happened", None),
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_CASES)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_answer(text, "number") == expected


def test_extract_number_is_default_kind() -> None:
    assert extract_answer("The answer is 12 apples.") == "12"


def test_boxed_beats_hashes_beats_phrase_beats_last_number() -> None:
    text = "The answer is 1.\n#### 2\n\\boxed{3}\nand finally 4"
    assert extract_answer(text) == "3"
    assert extract_answer("The answer is 1.\n#### 2\nand finally 4") == "2"
    assert extract_answer("The answer is 1.\nand finally 4") == "1"
    assert extract_answer("we had 1 and finally 4") == "4"


CHOICE_CASES = [
    ("The answer is (B)", "ABCD", "B"),
    ("The answer is B.", "ABCD", "B"),
    ("Answer: C", "ABCD", "C"),
    ("answer: (c)", "ABCD", "C"),
    ("The answer is (a)", "ABCD", "A"),
    ("The correct answer is a)", "ABCD", "A"),
    ("The final answer is: d", "ABCD", "D"),
    ("The answer is option B", "ABCD", "B"),
    ("The correct option is C because it is larger.", "ABCD", "C"),
    ("The answer is: **D**", "ABCD", "D"),
    ("Final answer: [B]", "ABCD", "B"),
    ("B)", "ABCD", "B"),
    ("B) Paris is the capital of France.", "ABCD", "B"),
    ("**D**", "ABCD", "D"),
    ("B", "ABCD", "B"),
    ("B.", "ABCD", "B"),
    ("  c  ", "ABCD", None),  # lower-case only counts after an answer phrase
    ("A", "ABCD", "A"),
    ("A.", "ABCD", "A"),
    ("(A)", "ABCD", "A"),
    ("A) 12 apples", "ABCD", "A"),
    ("A. Paris", "ABCD", "A"),
    ("A farmer has 3 cows and buys 2 more. How many cows?", "ABCD", None),
    ("A farmer has cows. So the answer is C.", "ABCD", "C"),
    ("A farmer has cows. The answer is a)", "ABCD", "A"),
    ("The answer is a cat.", "ABCD", None),
    ("Let me think. Paris is in France, so it is (C).", "ABCD", "C"),
    ("Let me think. Paris is in France, so it is C", "ABCD", "C"),
    ("Let me think. I pick A", "ABCD", None),
    ("Let me think step by step.\nThe first option is wrong.\n\nD.", "ABCD", "D"),
    ("I believe (B) is right because the others are wrong", "ABCD", "B"),
    ("The answer is E", "ABCD", None),  # not among the choices
    ("The answer is E", "ABCDE", "E"),
    ("E.g. this one is hard", "ABCDE", None),
    ("C++ is a language", "ABCD", None),
    ("Answer: B\nExplanation: option A is wrong and the answer is not C because", "ABCD", "B"),
    ("The answer is (B). Option D is wrong.", "ABCD", "B"),
    ("I don't know.", "ABCD", None),
    ("", "ABCD", None),
    ("The answer is B", "", None),
    ("`B`", "ABCD", "B"),
    ('"C"', "ABCD", "C"),
    ("The answer is 3", "ABCD", None),
]


@pytest.mark.parametrize(("text", "choices", "expected"), CHOICE_CASES)
def test_extract_choice(text: str, choices: str, expected: str | None) -> None:
    assert extract_answer(text, "choice", choices) == expected


TEXT_CASES = [
    ("The answer is Paris.", "paris"),
    ("The answer is Paris. It is the capital of France.", "paris"),
    ("Answer: **The Eiffel Tower**", "eiffel tower"),
    ('Final answer: "Mount   Everest"', "mount everest"),
    ("Let me think.\nIt is big and grey.\n\nAn elephant!", "elephant"),
    ("Thinking...\nThe answer is:\n\n  a Blue Whale  \n", "blue whale"),
    ("The answer is Paris.\nThe answer is Rome.", "rome"),
    ("Answer: Paris\nExplanation: it is the capital.", "paris"),
    ("We get \\boxed{\\text{Paris}}", "paris"),
    ("'hello world'", "hello world"),
    ("Just one line", "just one line"),
    ("", None),
    ("   \n\n  ", None),
    ("...", None),
]


@pytest.mark.parametrize(("text", "expected"), TEXT_CASES)
def test_extract_text(text: str, expected: str | None) -> None:
    assert extract_answer(text, "text") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", "42"),
        ("  42  ", "42"),
        ("42.50", "42.5"),
        ("42.0", "42"),
        ("42.", "42"),
        ("-0", "0"),
        ("-0.00", "0"),
        ("+7", "7"),
        ("1,234.50", "1234.5"),
        ("$1,234", "1234"),
        ("-$5", "-5"),
        ("$-5", "-5"),
        ("50%", "50"),
        ("3/4", "0.75"),
        ("-3/4", "-0.75"),
        ("2/3", "0.666666666666667"),
        ("1/0", None),
        (".5", "0.5"),
        ("007", "7"),
        ("100", "100"),
        ("1e3", "1000"),
        ("1.5e-3", "0.0015"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("0.1000", "0.1"),
        ("\u221212", "-12"),
        ("", None),
        ("abc", None),
        ("42 cows", None),
        ("1,23", None),
        ("4 2", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_normalise_number(raw: str, expected: str | None) -> None:
    assert normalise_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  The  Beatles. ", "beatles"),
        ("**Paris**", "paris"),
        ("an apple", "apple"),
        ("A Tale of Two Cities", "tale of two cities"),
        ("the", "the"),
        ("'quoted'", "quoted"),
        ("", None),
        ("?!", None),
    ],
)
def test_normalise_text(raw: str, expected: str | None) -> None:
    assert normalise_text(raw) == expected


@pytest.mark.parametrize(
    ("a", "b", "kind", "expected"),
    [
        ("42", "42.0", "number", True),
        ("42", "42.0000000001", "number", True),
        ("1000000", "1000000.5", "number", True),  # relative tolerance
        ("0", "0.0000000001", "number", True),  # absolute tolerance near zero
        ("42", "43", "number", False),
        ("1,234", "1234", "number", True),
        ("0.75", "3/4", "number", True),
        ("-5", "5", "number", False),
        ("abc", "abc", "number", True),
        ("abc", "42", "number", False),
        (None, "42", "number", False),
        ("42", None, "number", False),
        (None, None, "number", False),
        ("", "", "number", False),
        ("B", "b", "choice", True),
        ("B", "C", "choice", False),
        (None, "B", "choice", False),
        ("Paris", "paris.", "text", True),
        ("The Eiffel Tower", "eiffel tower", "text", True),
        ("Paris", "Rome", "text", False),
        (None, None, "text", False),
        ("10**400", "10**400", "number", True),
    ],
)
def test_answers_match(a: str | None, b: str | None, kind: str, expected: bool) -> None:
    assert answers_match(a, b, kind) is expected  # type: ignore[arg-type]


def test_answers_match_tolerance_parameter() -> None:
    assert not answers_match("1", "1.01")
    assert answers_match("1", "1.01", tol=0.05)
    assert not answers_match("1", "1.0000001", tol=0)
    assert answers_match("1" + "0" * 400, "1" + "0" * 399 + "1")  # no float overflow


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        extract_answer("42", "boolean")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        answer_grammar("boolean")  # type: ignore[arg-type]


def test_grammar_number() -> None:
    g = answer_grammar("number")
    assert g.startswith("root ::=")
    assert '"-"?' in g and "[0-9]" in g and '"."' in g
    assert "\n" not in g.rstrip("\n")


def test_grammar_choice() -> None:
    g = answer_grammar("choice", "ABCD")
    assert g.strip() == 'root ::= "A" | "B" | "C" | "D"'
    assert answer_grammar("choice", "abb").strip() == 'root ::= "A" | "B"'
    with pytest.raises(ValueError):
        answer_grammar("choice", "")


def test_grammar_text() -> None:
    g = answer_grammar("text")
    assert "root ::=" in g
    assert "{1,200}" in g and "\\n" in g  # escaped newline excluded from the class


@pytest.mark.parametrize(
    ("answers", "kind", "winner", "counts", "tied", "abstained"),
    [
        (["3", "5", "5", "3"], "number", "3", {"3": 2, "5": 2}, ["3", "5"], 0),
        (["5", "3", "3", "5"], "number", "5", {"5": 2, "3": 2}, ["5", "3"], 0),
        (["42", "42.0", "41"], "number", "42", {"42": 2, "41": 1}, ["42"], 0),
        (["7", None, "8", "8", None], "number", "8", {"7": 1, "8": 2}, ["8"], 2),
        ([None, None], "number", None, {}, [], 2),
        ([], "number", None, {}, [], 0),
        (["1", "2", "3"], "number", "1", {"1": 1, "2": 1, "3": 1}, ["1", "2", "3"], 0),
        (
            ["100", "100.00000001", "99.99999999", "7"],
            "number",
            "100",
            {"100": 3, "7": 1},
            ["100"],
            0,
        ),
        (["B", "c", "C", None], "choice", "C", {"B": 1, "C": 2}, ["C"], 1),
        (
            ["Paris", "paris.", "The Eiffel Tower", ""],
            "text",
            "paris",
            {"paris": 2, "eiffel tower": 1},
            ["paris"],
            1,
        ),
    ],
)
def test_tally_votes(
    answers: list[str | None],
    kind: str,
    winner: str | None,
    counts: dict[str, int],
    tied: list[str],
    abstained: int,
) -> None:
    t = tally_votes(answers, kind)  # type: ignore[arg-type]
    assert t.winner == winner
    assert t.counts == counts
    assert list(t.counts) == list(counts)  # first-seen order
    assert t.tied == tied
    assert t.abstained == abstained


def test_tally_is_frozen_and_serialisable() -> None:
    t = tally_votes(["3", "5", "5", "3", None])
    assert isinstance(t, Tally)
    with pytest.raises(AttributeError):
        t.winner = "5"  # type: ignore[misc]
    d = t.to_dict()
    assert d == {"winner": "3", "counts": {"3": 2, "5": 2}, "tied": ["3", "5"], "abstained": 1}
    d["counts"]["3"] = 99
    assert t.counts["3"] == 2


def test_tally_of_extracted_answers() -> None:
    replies = [
        "3 * 14 = 42. 42 - 9 = 33. The answer is 33.",
        "So the farmer has 33 cows left.",
        "#### 42",
        "I am not sure.",
        "\\boxed{33.0}",
    ]
    t = tally_votes([extract_answer(r) for r in replies])
    assert t.winner == "33"
    assert t.counts == {"33": 3, "42": 1}
    assert t.abstained == 1


@pytest.mark.parametrize("kind", ["number", "choice", "text"])
@given(text=st.text())
def test_extract_never_raises(kind: str, text: str) -> None:
    result = extract_answer(text, kind)  # type: ignore[arg-type]
    assert result is None or (isinstance(result, str) and result != "")


@given(text=st.text(alphabet="0123456789.,-+$%/ =#*\\boxed{}answer:is\n()ABCD", max_size=80))
def test_extract_never_raises_on_number_like_text(text: str) -> None:
    for kind in ("number", "choice", "text"):
        result = extract_answer(text, kind)  # type: ignore[arg-type]
        assert result is None or isinstance(result, str)
    number = extract_answer(text, "number")
    if number is not None:
        assert normalise_number(number) == number  # extraction output is canonical


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_normalise_number_round_trips_ints(x: int) -> None:
    n = normalise_number(str(x))
    assert n is not None
    assert float(n) == x
    assert n == str(x)


@given(st.integers())
def test_normalise_number_exact_for_big_ints(x: int) -> None:
    n = normalise_number(f"{x:,}")
    assert n is not None and int(n) == x


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_normalise_number_round_trips_formatted_floats(x: float) -> None:
    formatted = f"{x:,.2f}"
    n = normalise_number(formatted)
    assert n is not None
    assert float(n) == pytest.approx(x, abs=0.006)
    assert float(n) == float(formatted.replace(",", ""))
    assert normalise_number(n) == n  # idempotent


@given(st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "2.0", "3"])), max_size=12))
def test_tally_properties(answers: list[str | None]) -> None:
    t = tally_votes(answers)
    assert t.abstained == answers.count(None)
    assert sum(t.counts.values()) + t.abstained == len(answers)
    if t.winner is None:
        assert not t.counts
    else:
        assert t.tied[0] == t.winner
        assert all(t.counts[a] == max(t.counts.values()) for a in t.tied)
        # the winner is the tied answer whose first vote came earliest
        canon = [normalise_number(a) if a else None for a in answers]
        firsts = {a: canon.index(a) for a in t.tied}
        assert min(firsts, key=firsts.__getitem__) == t.winner
