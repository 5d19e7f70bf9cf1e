"""The built-in organisations driven directly, as sans-IO generators, with canned turns."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from minsky.answers import answer_grammar
from minsky.messages import ChatReply, Message, Options
from minsky.organisations.base import (
    Ask,
    Member,
    MemberAnswer,
    NoParams,
    Outcome,
    Round,
    SocietyView,
    Task,
    Turn,
    choice_letters,
    detect_kind,
)
from minsky.organisations.base import drive as base_drive
from minsky.organisations.vote import SINGLE, VOTE, VoteParams, single, vote

SOLVE_NUMBER = (
    'Think step by step, then end with a line "The answer is N." where N is a single number.'
)
REPAIR_NUMBER = "Reply with only the final answer as a number."

OPTS = Options(temperature=0.7, max_tokens=100)


def members(n: int = 3, constrained: bool | Sequence[bool] = True) -> list[Member]:
    flags = [constrained] * n if isinstance(constrained, bool) else list(constrained)
    return [
        Member(f"m{i + 1}", f"You are member number {i + 1}.", OPTS, flags[i]) for i in range(n)
    ]


def view(ms: list[Member], params: VoteParams | None = None) -> SocietyView:
    return SocietyView(ms, params or VoteParams())


def turns(rnd: Round, texts: Sequence[str]) -> list[Turn]:
    assert len(rnd.asks) == len(texts), "test scripted the wrong number of replies"
    return [Turn(ask, ChatReply(text)) for ask, text in zip(rnd.asks, texts, strict=True)]


def drive(gen, scripts: Sequence[Sequence[str]]) -> tuple[list[Round], Outcome]:
    """Run an organisation to the end, answering round i with scripts[i]."""
    asked: list[Round] = []

    def answer(rnd: Round) -> list[Turn]:
        asked.append(rnd)
        if len(asked) > len(scripts):
            raise AssertionError(f"unexpected extra round {rnd.label!r}: {rnd.asks}")
        return turns(rnd, scripts[len(asked) - 1])

    return base_drive(gen, answer)


# -- round 1 -------------------------------------------------------------------------------


def test_vote_round_one_asks_every_member_the_question() -> None:
    ms = members(3)
    gen = vote(Task("What is 2+3?"), view(ms))
    rnd = next(gen)
    assert rnd.label == "answer"
    assert [a.agent for a in rnd.asks] == ["m1", "m2", "m3"]
    for ask, member in zip(rnd.asks, ms, strict=True):
        assert ask.purpose == "answer"
        assert ask.grammar is None
        assert ask.options is None  # the member's own sampling options apply
        assert ask.messages == [
            Message("system", member.role),
            Message("user", f"What is 2+3?\n\n{SOLVE_NUMBER}"),
        ]


def test_round_one_asks_are_independent_lists() -> None:
    rnd = next(vote(Task("What is 2+3?"), view(members(2))))
    rnd.asks[0].messages.append(Message("assistant", "x"))
    assert len(rnd.asks[1].messages) == 2


def test_choice_question_asks_for_one_of_the_letters() -> None:
    task = Task("Pick one.\nA) red\nB) blue\nC) green", kind="choice", choices="ABC")
    rnd = next(vote(task, view(members(1))))
    user = rnd.asks[0].messages[1]
    assert user.role == "user"
    assert user.content.startswith(task.question + "\n\n")
    assert user.content.endswith(
        'Think step by step, then end with a line "The answer is X." where X is one of the '
        "letters A, B, C."
    )


def test_text_question_asks_for_a_short_answer() -> None:
    rnd = next(vote(Task("Name the capital of France.", kind="text"), view(members(1))))
    content = rnd.asks[0].messages[1].content
    assert content.startswith("Name the capital of France.")
    assert 'end with a line "The answer is ..."' in content


# -- answers, tally and tie-breaks ---------------------------------------------------------


def test_vote_plurality_wins_and_members_keep_their_texts() -> None:
    replies = ["The answer is 5.", "I think 2+3 = 6", "#### 5"]
    rounds, outcome = drive(vote(Task("What is 2+3?"), view(members(3))), [replies])
    assert len(rounds) == 1  # everything extracted: no repair round
    assert outcome.answer == "5"
    assert outcome.members == [
        MemberAnswer("m1", "5", replies[0], 1),
        MemberAnswer("m2", "6", replies[1], 1),
        MemberAnswer("m3", "5", replies[2], 1),
    ]
    assert outcome.tally == {"winner": "5", "counts": {"5": 2, "6": 1}, "tied": ["5"],
                             "abstained": 0}


def test_equivalent_numbers_share_one_bucket() -> None:
    _, outcome = drive(
        vote(Task("q 1"), view(members(3))),
        [["The answer is 42.", "The answer is 42.0", "The answer is 7"]],
    )
    assert outcome.answer == "42"
    assert outcome.tally is not None and outcome.tally["counts"] == {"42": 2, "7": 1}


@pytest.mark.parametrize(
    ("answers", "winner"),
    [
        (["3", "4", "4", "3"], "3"),
        (["4", "3", "3", "4"], "4"),
        (["9", "8", "7"], "9"),
    ],
)
def test_tie_goes_to_the_answer_given_first(answers: list[str], winner: str) -> None:
    replies = [f"The answer is {a}." for a in answers]
    _, outcome = drive(vote(Task("q 1"), view(members(len(answers)))), [replies])
    assert outcome.answer == winner
    assert outcome.tally is not None
    assert outcome.tally["tied"][0] == winner
    assert len(outcome.tally["tied"]) > 1


def test_same_replies_always_give_the_same_decision() -> None:
    replies = ["The answer is 1.", "The answer is 2."]
    results = {drive(vote(Task("q 1"), view(members(2))), [replies])[1].answer for _ in range(5)}
    assert results == {"1"}


def test_all_abstain_gives_no_answer() -> None:
    ms = members(3, constrained=False)
    rounds, outcome = drive(vote(Task("q 1"), view(ms)), [["no idea", "dunno", ""]])
    assert len(rounds) == 1
    assert outcome.answer is None
    assert [m.answer for m in outcome.members] == [None, None, None]
    assert outcome.tally is not None
    assert outcome.tally["abstained"] == 3
    assert outcome.tally["counts"] == {}
    assert outcome.tally["winner"] is None


def test_abstainers_do_not_count_against_a_single_vote() -> None:
    ms = members(3, constrained=False)
    _, outcome = drive(vote(Task("q 1"), view(ms)), [["hmm", "The answer is 8.", "?"]])
    assert outcome.answer == "8"
    assert outcome.tally is not None and outcome.tally["abstained"] == 2


# -- repair --------------------------------------------------------------------------------


def test_constrained_member_without_an_answer_gets_a_repair_ask() -> None:
    ms = members(3, constrained=True)
    gen = vote(Task("What is 2+3?"), view(ms))
    first = next(gen)
    texts = ["The answer is 5.", "Let me think about addition", "The answer is 5."]
    repair = gen.send(turns(first, texts))
    assert repair.label == "answer:repair"
    assert len(repair.asks) == 1
    ask = repair.asks[0]
    assert ask.agent == "m2"
    assert ask.purpose == "repair"
    assert ask.grammar == answer_grammar("number")
    assert ask.options == Options(temperature=0.0, max_tokens=24)
    assert ask.messages == [
        *first.asks[1].messages,
        Message("assistant", "Let me think about addition"),
        Message("user", REPAIR_NUMBER),
    ]
    with pytest.raises(StopIteration) as stop:
        gen.send(turns(repair, ["6"]))
    outcome: Outcome = stop.value.value
    assert outcome.answer == "5"
    m2 = outcome.members[1]
    assert (m2.name, m2.answer) == ("m2", "6")
    assert m2.text == "Let me think about addition"  # the original reply is kept
    assert outcome.tally is not None and outcome.tally["counts"] == {"5": 2, "6": 1}


def test_repaired_answers_can_change_the_decision() -> None:
    ms = members(3)
    rounds, outcome = drive(
        vote(Task("q 1"), view(ms)),
        [["The answer is 4.", "hmm", "well"], ["7", "7"]],
    )
    assert [a.agent for a in rounds[1].asks] == ["m2", "m3"]
    assert outcome.answer == "7"


def test_each_repair_ask_carries_its_own_previous_reply() -> None:
    ms = members(3)
    gen = vote(Task("q 1"), view(ms))
    first = next(gen)
    repair = gen.send(turns(first, ["no", "The answer is 1", "never"]))
    assert [a.agent for a in repair.asks] == ["m1", "m3"]
    assert repair.asks[0].messages[0] == Message("system", ms[0].role)
    assert repair.asks[0].messages[2] == Message("assistant", "no")
    assert repair.asks[1].messages[0] == Message("system", ms[2].role)
    assert repair.asks[1].messages[2] == Message("assistant", "never")


def test_unconstrained_members_are_not_repaired() -> None:
    ms = members(3, constrained=[True, False, True])
    gen = vote(Task("q 1"), view(ms))
    first = next(gen)
    repair = gen.send(turns(first, ["hmm", "hmm", "The answer is 2"]))
    assert [a.agent for a in repair.asks] == ["m1"]
    with pytest.raises(StopIteration) as stop:
        gen.send(turns(repair, ["2"]))
    outcome = stop.value.value
    assert [m.answer for m in outcome.members] == ["2", None, "2"]


def test_failed_calls_are_not_repaired() -> None:
    # an error reply has nothing to repair: the member's call failed, not its format
    ms = members(2)
    gen = vote(Task("q 1"), view(ms))
    first = next(gen)
    failed = [
        Turn(first.asks[0], ChatReply("", finish_reason="error", error="down")),
        Turn(first.asks[1], ChatReply("The answer is 3.")),
    ]
    with pytest.raises(StopIteration) as stop:
        gen.send(failed)
    outcome = stop.value.value
    assert [m.answer for m in outcome.members] == [None, "3"]
    assert outcome.answer == "3"


def test_no_repair_round_when_nobody_constrained_fails() -> None:
    rounds, outcome = drive(
        vote(Task("q 1"), view(members(2, constrained=False))), [["x", "The answer is 3"]]
    )
    assert len(rounds) == 1
    assert outcome.answer == "3"


def test_repair_that_still_fails_abstains() -> None:
    rounds, outcome = drive(vote(Task("q 1"), view(members(2))), [["x", "y"], ["", "nope"]])
    assert len(rounds) == 2
    assert outcome.answer is None
    assert [m.answer for m in outcome.members] == [None, None]


def test_repair_false_disables_the_repair_round() -> None:
    ms = members(3, constrained=True)
    rounds, outcome = drive(
        vote(Task("q 1"), view(ms, VoteParams(repair=False))),
        [["hmm", "The answer is 9", "what"]],
    )
    assert len(rounds) == 1
    assert outcome.answer == "9"
    assert [m.answer for m in outcome.members] == [None, "9", None]


def test_choice_repair_uses_the_letter_grammar() -> None:
    task = Task("Pick.\nA) x\nB) y\nC) z", kind="choice", choices="ABC")
    gen = vote(task, view(members(1)))
    first = next(gen)
    repair = gen.send(turns(first, ["I cannot decide"]))
    assert repair.asks[0].grammar == answer_grammar("choice", "ABC")
    assert repair.asks[0].messages[-1] == Message(
        "user", "Reply with only the letter of the final answer."
    )
    with pytest.raises(StopIteration) as stop:
        gen.send(turns(repair, ["B"]))
    assert stop.value.value.answer == "B"


# -- single --------------------------------------------------------------------------------


def test_single_asks_only_the_first_member() -> None:
    ms = members(3)
    gen = single(Task("What is 2+3?"), view(ms))
    rnd = next(gen)
    assert [a.agent for a in rnd.asks] == ["m1"]
    assert rnd.asks[0].messages[0] == Message("system", ms[0].role)
    with pytest.raises(StopIteration) as stop:
        gen.send(turns(rnd, ["The answer is 5."]))
    outcome: Outcome = stop.value.value
    assert outcome.answer == "5"
    assert outcome.members == [MemberAnswer("m1", "5", "The answer is 5.", 1)]
    assert outcome.tally is None


def test_single_repairs_when_constrained() -> None:
    rounds, outcome = drive(single(Task("q 1"), view(members(1))), [["hmm"], ["12"]])
    assert [r.label for r in rounds] == ["answer", "answer:repair"]
    assert outcome.answer == "12"


def test_single_without_repair() -> None:
    rounds, outcome = drive(
        single(Task("q 1"), view(members(1), VoteParams(repair=False))), [["hmm"]]
    )
    assert len(rounds) == 1
    assert outcome.answer is None


# -- registration objects, params and helpers ----------------------------------------------


def test_registered_organisation_objects() -> None:
    assert VOTE.name == "vote" and VOTE.run is vote and VOTE.params is VoteParams
    assert SINGLE.name == "single" and SINGLE.run is single and SINGLE.params is VoteParams


def test_vote_params_reject_unknown_keys() -> None:
    assert VoteParams().repair is True
    with pytest.raises(ValidationError):
        VoteParams.model_validate({"repiar": False})
    with pytest.raises(ValidationError):
        NoParams.model_validate({"anything": 1})


def test_society_view_member_lookup() -> None:
    ms = members(3)
    assert view(ms).member("m2") is ms[1]


def test_outcome_to_dict() -> None:
    outcome = Outcome("5", [MemberAnswer("a", "5", "t")], {"winner": "5"}, {"k": 1})
    data = outcome.to_dict()
    assert data["answer"] == "5"
    assert data["members"] == [{"name": "a", "answer": "5", "text": "t", "round": 1}]
    assert data["tally"] == {"winner": "5"}
    assert data["detail"] == {"k": 1}


def test_turn_text_is_the_reply_text() -> None:
    assert Turn(Ask("a", []), ChatReply("hello")).text == "hello"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which?\nA) one\nB) two", "choice"),
        ("Which?\n(A) one\n(B) two\n(C) three", "choice"),
        ("What is 17 * 23?", "number"),
        ("How many legs does a spider have?", "number"),
        ("Name the capital of France.", "text"),
        ("Only A) one option", "text"),
    ],
)
def test_detect_kind(question: str, kind: str) -> None:
    assert detect_kind(question) == kind


@pytest.mark.parametrize(
    ("question", "letters"),
    [
        ("Which?\nA) one\nB) two\nC) three\nD) four", "ABCD"),
        ("Which?\n(A) one\n(B) two\n(C) three\n(D) four\n(E) five\n(F) six", "ABCDEF"),
        ("Which?\nA. one\nB. two", "AB"),
        ("Only A) one option", "ABCDE"),  # fewer than two options listed: the default
        ("What is 2 + 3?", "ABCDE"),
    ],
)
def test_choice_letters_are_the_options_the_question_lists(question: str, letters: str) -> None:
    assert choice_letters(question) == letters
