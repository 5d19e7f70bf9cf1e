"""The multi-round organisations driven directly, as sans-IO generators, with scripted turns.

Each test scripts the replies of every round and checks the exact sequence of rounds: its
label, who was asked (in order), what they were shown, and how the organisation decided.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import pytest
from pydantic import BaseModel

from minsky.answers import answer_grammar
from minsky.messages import ChatReply, Message, Options
from minsky.organisations.base import Member, MemberAnswer, Outcome, Round, SocietyView, Task, Turn
from minsky.organisations.base import drive as base_drive
from minsky.organisations.contest import ContestParams, contest
from minsky.organisations.debate import DebateParams, debate
from minsky.organisations.democracy import DemocracyParams, democracy, neighbours_of
from minsky.organisations.mixture import MixtureParams, mixture
from minsky.organisations.monarchy import MonarchyParams, monarchy
from minsky.organisations.roleplay import RoleplayParams, roleplay
from minsky.organisations.voting import ballot_grammar

OPTS = Options(temperature=0.7, max_tokens=100)
Q = "What is 6*7?"
SOLVE = 'Think step by step, then end with a line "The answer is N." where N is a single number.'
SOLVE_USER = f"{Q}\n\n{SOLVE}"
REPAIR_NUMBER = "Reply with only the final answer as a number."

Script = Sequence[tuple[str, Sequence[str]]]


def m(name: str, group: str = "member", constrained: bool = False) -> Member:
    return Member(name, f"You are {name}.", OPTS, constrained, group)


def view(members: list[Member], params: BaseModel) -> SocietyView:
    return SocietyView(members, params)


def turns(rnd: Round, texts: Sequence[str]) -> list[Turn]:
    assert len(rnd.asks) == len(texts), f"{rnd.label}: scripted the wrong number of replies"
    return [Turn(ask, ChatReply(text)) for ask, text in zip(rnd.asks, texts, strict=True)]


def drive(gen: Generator[Round, list[Turn], Outcome], script: Script) -> tuple[list[Round],
                                                                              Outcome]:
    """Run an organisation to its end; round i must carry label script[i][0]."""
    def answer(rnd: Round) -> list[Turn]:
        i = len(rounds)
        rounds.append(rnd)
        assert i < len(script), f"unexpected extra round {rnd.label!r}"
        label, texts = script[i]
        assert rnd.label == label, f"round {i + 1}: {rnd.label!r} != {label!r}"
        return turns(rnd, texts)

    rounds: list[Round] = []
    _, outcome = base_drive(gen, answer)
    assert len(rounds) == len(script), (
        f"ended after {[r.label for r in rounds]}, expected {[s[0] for s in script]}"
    )
    return rounds, outcome


def agents(rnd: Round) -> list[str]:
    return [a.agent for a in rnd.asks]


def user(rnd: Round, i: int = 0) -> str:
    """The last user message of the i-th ask of a round."""
    msgs = rnd.asks[i].messages
    assert msgs[-1].role == "user"
    return msgs[-1].content


# == monarchy ==============================================================================


def monarchy_members(leader: bool = True, constrained: bool = False) -> list[Member]:
    ms = [m("org", "organizer"), m("e1", "expert"), m("e2", "expert")]
    if leader:
        ms.append(m("king", "leader", constrained))
    return ms


MONARCHY_SCRIPT: Script = [
    ("organizer:1", ["SUBQ-1: what is 6*5?"]),
    ("experts:1", ["E1-R1 thirty", "E2-R1 30"]),
    ("organizer:2", ["SUBQ-2: and 6*2?"]),
    ("experts:2", ["E1-R2 twelve", "E2-R2 12"]),
    ("summary", ["  SUMMARY: 30 + 12, so 42.  "]),
    ("leader", ["The answer is 42."]),
]


def test_monarchy_round_sequence_and_who_is_asked() -> None:
    rounds, _ = drive(monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=2))),
                      MONARCHY_SCRIPT)
    assert [agents(r) for r in rounds] == [
        ["org"], ["e1", "e2"], ["org"], ["e1", "e2"], ["org"], ["king"],
    ]
    assert [[a.purpose for a in r.asks] for r in rounds] == [
        ["sub-question"], ["expert", "expert"], ["sub-question"], ["expert", "expert"],
        ["summary"], ["decide"],
    ]
    # every ask is a fresh two-message conversation in the member's own role
    for rnd in rounds:
        for ask in rnd.asks:
            assert [msg.role for msg in ask.messages] == ["system", "user"]
            assert ask.messages[0].content == f"You are {ask.agent}."
            assert ask.grammar is None


def test_monarchy_what_each_member_is_shown() -> None:
    rounds, _ = drive(monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=2))),
                      MONARCHY_SCRIPT)
    org1, exp1, org2, exp2, summary, leader = rounds
    # the organizer first sees the task only
    assert Q in user(org1)
    assert "exchange so far" not in user(org1)
    # experts see the task and the organizer's sub-question
    for i in range(2):
        assert user(exp1, i) == (
            f"Task: {Q}\n\nThe organizer asks: SUBQ-1: what is 6*5?\n\n"
            "Answer the organizer's question briefly and precisely."
        )
        assert "SUBQ-2: and 6*2?" in user(exp2, i)
        assert "SUBQ-1" not in user(exp2, i)
    # the organizer then sees the exchange so far, expert replies included
    assert (
        "The exchange so far:\nOrganizer: SUBQ-1: what is 6*5?\ne1: E1-R1 thirty\ne2: E2-R1 30"
    ) in user(org2)
    # the summary is asked over the whole exchange
    assert user(summary) == (
        f"Task: {Q}\n\nThe exchange between you and the experts:\n"
        "Organizer: SUBQ-1: what is 6*5?\ne1: E1-R1 thirty\ne2: E2-R1 30\n"
        "Organizer: SUBQ-2: and 6*2?\ne1: E1-R2 twelve\ne2: E2-R2 12\n\n"
        "Summarise this exchange for the leader, who must decide the final answer. Keep every "
        "fact and number that matters, and say where the experts disagreed."
    )
    # the leader sees exactly the summary, not the exchange itself
    assert user(leader) == (
        f"Task: {Q}\n\nSummary of your organizer's discussion with the experts:\n"
        f"SUMMARY: 30 + 12, so 42.\n\n{SOLVE}"
    )
    assert "E1-R1" not in user(leader)


def test_monarchy_outcome_is_the_leaders_answer() -> None:
    _, outcome = drive(monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=2))),
                       MONARCHY_SCRIPT)
    assert outcome.answer == "42"
    assert outcome.text == "The answer is 42."
    assert outcome.detail == {
        "subquestions": ["SUBQ-1: what is 6*5?", "SUBQ-2: and 6*2?"],
        "summary": "  SUMMARY: 30 + 12, so 42.  ",
        "leader": "king",
    }
    assert outcome.members == [
        MemberAnswer("e1", None, "E1-R2 twelve", 2),
        MemberAnswer("e2", None, "E2-R2 12", 2),
        MemberAnswer("king", "42", "The answer is 42.", 3),
    ]


def test_monarchy_leader_decides_even_against_the_experts() -> None:
    script = [*MONARCHY_SCRIPT[:-1], ("leader", ["Experts are wrong. The answer is 41."])]
    _, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=2))), script
    )
    assert outcome.answer == "41"


def test_monarchy_without_a_leader_the_organizer_leads() -> None:
    script = [
        ("organizer:1", ["SUBQ"]),
        ("experts:1", ["a", "b"]),
        ("summary", ["SUM"]),
        ("leader", ["The answer is 7."]),
    ]
    rounds, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(leader=False), MonarchyParams(rounds=1))),
        script,
    )
    assert agents(rounds[-1]) == ["org"]
    assert rounds[-1].asks[0].messages[0] == Message("system", "You are org.")
    assert outcome.answer == "7"
    assert outcome.detail["leader"] == "org"


def test_monarchy_rounds_param_sets_the_number_of_subquestions() -> None:
    script: list[tuple[str, list[str]]] = []
    for k in range(1, 4):
        script += [(f"organizer:{k}", [f"Q{k}"]), (f"experts:{k}", ["x", "y"])]
    script += [("summary", ["S"]), ("leader", ["The answer is 1."])]
    _, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=3))), script
    )
    assert outcome.detail["subquestions"] == ["Q1", "Q2", "Q3"]


def test_monarchy_empty_subquestion_falls_back_to_the_task() -> None:
    script = [
        ("organizer:1", ["   "]),
        ("experts:1", ["a", "b"]),
        ("summary", ["S"]),
        ("leader", ["The answer is 1."]),
    ]
    rounds, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(), MonarchyParams(rounds=1))), script
    )
    assert f"The organizer asks: {Q}" in user(rounds[1])
    assert outcome.detail["subquestions"] == [Q]


# == democracy =============================================================================


def citizens(n: int = 3, constrained: bool = False) -> list[Member]:
    return [m(f"c{i}", constrained=constrained) for i in range(1, n + 1)]


def test_democracy_answer_then_revise_each_continuing_its_own_conversation() -> None:
    ms = citizens(3)
    answers = ["c1 thinks. The answer is 42.", "c2 thinks. The answer is 41.",
               "c3 thinks. The answer is 42."]
    rounds, outcome = drive(
        democracy(Task(Q), view(ms, DemocracyParams())),
        [("answer", answers), ("revise", ["The answer is 42."] * 3)],
    )
    first, revise = rounds
    assert agents(first) == agents(revise) == ["c1", "c2", "c3"]
    for i, member in enumerate(ms):
        assert first.asks[i].messages == [
            Message("system", member.role), Message("user", SOLVE_USER)
        ]
        msgs = revise.asks[i].messages
        assert revise.asks[i].purpose == "revise"
        assert msgs[:3] == [
            Message("system", member.role),
            Message("user", SOLVE_USER),
            Message("assistant", answers[i]),
        ]
        assert msgs[3].role == "user"
        shown = msgs[3].content
        assert shown.startswith("Other members answered the same task:")
        others = [j for j in range(3) if j != i]
        for j in others:
            assert f"- c{j + 1}: {answers[j]}" in shown
        assert f"c{i + 1}:" not in shown  # not its own answer
    # unanimous after revising: no vote round
    assert outcome.answer == "42"
    assert outcome.tally == {"rule": "plurality", "candidates": ["42"], "unanimous": True}
    assert [a.round for a in outcome.members] == [2, 2, 2]


def test_democracy_ring_neighbours_one() -> None:
    ms = citizens(4)
    answers = [f"c{i} says. The answer is {i}." for i in range(1, 5)]
    rounds, _ = drive(
        democracy(Task(Q), view(ms, DemocracyParams(neighbours=1))),
        [("answer", answers), ("revise", ["The answer is 1."] * 4)],
    )
    revise = rounds[1]
    for i in range(4):
        shown = user(revise, i)
        seen = [j for j in range(4) if f"- c{j + 1}:" in shown]
        assert seen == [(i + 1) % 4], f"c{i + 1} saw {seen}"


@pytest.mark.parametrize(
    ("i", "n", "k", "expected"),
    [(0, 3, None, [1, 2]), (2, 3, None, [0, 1]), (0, 4, 1, [1]), (3, 4, 1, [0]),
     (2, 5, 2, [3, 4]), (4, 5, 2, [0, 1]), (1, 3, 5, [0, 2]), (0, 1, None, [])],
)
def test_neighbours_of(i: int, n: int, k: int | None, expected: list[int]) -> None:
    assert neighbours_of(i, n, k) == expected


def test_democracy_unanimous_first_answers_skip_the_vote() -> None:
    rounds, outcome = drive(
        democracy(Task(Q), view(citizens(3), DemocracyParams(revise=False))),
        [("answer", ["The answer is 42."] * 3)],
    )
    assert len(rounds) == 1
    assert outcome.answer == "42"
    assert outcome.tally is not None and outcome.tally["unanimous"] is True


def test_democracy_equivalent_numbers_are_one_candidate() -> None:
    _, outcome = drive(
        democracy(Task(Q), view(citizens(3), DemocracyParams(revise=False))),
        [("answer", ["The answer is 42.", "The answer is 42.0", "#### 42"])],
    )
    assert outcome.answer == "42"
    assert outcome.tally is not None and outcome.tally["candidates"] == ["42"]


def test_democracy_nobody_answers_gives_no_answer_and_no_vote() -> None:
    _, outcome = drive(
        democracy(Task(Q), view(citizens(2), DemocracyParams(revise=False))),
        [("answer", ["no idea", "pass"])],
    )
    assert outcome.answer is None
    assert outcome.tally == {"rule": "plurality", "candidates": [], "unanimous": False}


def test_single_member_democracy_does_not_revise() -> None:
    rounds, outcome = drive(
        democracy(Task(Q), view(citizens(1), DemocracyParams())),
        [("answer", ["The answer is 3."])],
    )
    assert [r.label for r in rounds] == ["answer"]
    assert outcome.answer == "3"


DISAGREE = ["c1: The answer is 5.", "c2: The answer is 6.", "c3: The answer is 7."]


def _vote(rule: str, ballots: list[str], first: Sequence[str] = DISAGREE,
          n: int = 3) -> tuple[list[Round], Outcome]:
    return drive(
        democracy(Task(Q), view(citizens(n), DemocracyParams(revise=False, rule=rule))),
        [("answer", first), ("vote", ballots)],
    )


def test_democracy_vote_round_asks_everyone_with_a_grammar() -> None:
    rounds, _ = _vote("plurality", ["A", "B", "C"])
    vote = rounds[1]
    assert agents(vote) == ["c1", "c2", "c3"]
    for i, ask in enumerate(vote.asks):
        assert ask.purpose == "vote"
        assert ask.grammar == ballot_grammar("plurality", 3)
        assert ask.messages[0] == Message("system", f"You are c{i + 1}.")
        assert len(ask.messages) == 2  # a fresh conversation, not the answering one
    ballot = user(vote)
    assert ballot.startswith(f"Task: {Q}\n\nCandidate answers:")
    assert "A) 5 (for example: c1: The answer is 5.)" in ballot
    assert "B) 6 (for example: c2: The answer is 6.)" in ballot
    assert "C) 7 (for example: c3: The answer is 7.)" in ballot
    assert ballot.endswith("Vote for the best answer: reply with its letter only.")


def test_democracy_plurality_hand_counted() -> None:
    _, outcome = _vote("plurality", ["B", "b", "A"])
    assert outcome.answer == "6"
    tally = outcome.tally
    assert tally is not None
    assert tally["candidates"] == ["5", "6", "7"]
    assert tally["scores"] == [1.0, 2.0, 0.0]
    assert tally["winner"] == 1
    assert tally["ballots"] == {"c1": ["B"], "c2": ["B"], "c3": ["A"]}


def test_democracy_approval_hand_counted() -> None:
    # A: 1, B: 1, C: 3
    _, outcome = _vote("approval", ["A, C", "B, C", "C"])
    assert outcome.answer == "7"
    assert outcome.tally is not None
    assert outcome.tally["scores"] == [1.0, 1.0, 3.0]
    assert outcome.tally["ballots"] == {"c1": ["A", "C"], "c2": ["B", "C"], "c3": ["C"]}


def test_democracy_borda_hand_counted() -> None:
    # A: 2+1+0 = 3, B: 1+2+2 = 5, C: 0+0+1 = 1
    rounds, outcome = _vote("borda", ["A > B > C", "B > A > C", "B > C > A"])
    assert rounds[1].asks[0].grammar == ballot_grammar("borda", 3)
    assert user(rounds[1]).endswith('separated by ">".')
    assert outcome.answer == "6"
    assert outcome.tally is not None
    assert outcome.tally["scores"] == [3.0, 5.0, 1.0]
    assert outcome.tally["rule"] == "borda"


def test_democracy_tie_goes_to_the_first_proposed_candidate() -> None:
    # candidates in order of first appearance: 7 (A), 5 (B)
    first = ["The answer is 7.", "The answer is 5.", "The answer is 7."]
    _, outcome = _vote("plurality", ["B", "A", "what?"], first=first)
    assert outcome.tally is not None
    assert outcome.tally["candidates"] == ["7", "5"]
    assert outcome.tally["tied"] == [0, 1]
    assert outcome.tally["abstained"] == 1
    assert outcome.answer == "7"


def test_democracy_the_vote_can_overturn_the_majority_of_answers() -> None:
    first = ["The answer is 5.", "The answer is 5.", "The answer is 6."]
    _, outcome = _vote("plurality", ["B", "B", "B"], first=first)
    assert outcome.answer == "6"


def test_democracy_all_ballots_abstain() -> None:
    _, outcome = _vote("plurality", ["", "none", "?"])
    assert outcome.answer is None
    assert outcome.tally is not None and outcome.tally["winner"] is None


def test_democracy_members_without_an_answer_vote_but_propose_nothing() -> None:
    first = ["The answer is 5.", "no idea", "The answer is 6."]
    rounds, outcome = _vote("plurality", ["A", "B", "B"], first=first)
    assert agents(rounds[1]) == ["c1", "c2", "c3"]
    assert rounds[1].asks[0].grammar == ballot_grammar("plurality", 2)
    assert outcome.tally is not None and outcome.tally["candidates"] == ["5", "6"]
    assert outcome.answer == "6"


def test_democracy_reason_chars_zero_shows_no_reasons() -> None:
    long = "c1 reasons at length about the problem. The answer is 5."
    gen = democracy(Task(Q), view(citizens(2), DemocracyParams(revise=False, reason_chars=0)))
    first = next(gen)
    vote = gen.send(turns(first, [long, "The answer is 6."]))
    assert vote.label == "vote"
    assert "reasons at length" not in user(vote)


def test_democracy_with_more_than_26_candidates_still_votes() -> None:
    n = 27
    gen = democracy(Task(Q), view(citizens(n), DemocracyParams(revise=False)))
    first = next(gen)
    vote = gen.send(turns(first, [f"The answer is {k}." for k in range(n)]))
    assert vote.label == "vote"


# == debate ================================================================================


def debaters(n: int = 3, editor: bool = False, constrained: bool = False) -> list[Member]:
    ms = [m(f"d{i}", "debater", constrained) for i in range(1, n + 1)]
    if editor:
        ms.append(m("ed", "editor", constrained))
    return ms


def debate_script(rounds: int = 3, n: int = 3) -> list[tuple[str, list[str]]]:
    answers = {1: "5", 2: "6", 3: "5"}
    return [
        (f"round {k}", [f"d{i} R{k}: The answer is {answers.get(i, '5')}."
                        for i in range(1, n + 1)])
        for k in range(1, rounds + 1)
    ]


def test_debate_rounds_and_growing_conversations() -> None:
    ms = debaters(3)
    script = debate_script(3)
    rounds, outcome = drive(debate(Task(Q), view(ms, DebateParams(rounds=3))), script)
    assert [r.label for r in rounds] == ["round 1", "round 2", "round 3"]
    for rnd in rounds:
        assert agents(rnd) == ["d1", "d2", "d3"]
    for i, member in enumerate(ms):
        r1 = rounds[0].asks[i].messages
        assert r1 == [Message("system", member.role), Message("user", SOLVE_USER)]
        assert rounds[0].asks[i].purpose == "answer"
        for k in (2, 3):
            msgs = rounds[k - 1].asks[i].messages
            assert rounds[k - 1].asks[i].purpose == "update"
            # its own conversation so far, then its last reply, then the update
            previous = rounds[k - 2].asks[i].messages
            assert msgs[: len(previous)] == previous
            assert msgs[len(previous)] == Message("assistant", script[k - 2][1][i])
            assert len(msgs) == len(previous) + 2
            update = msgs[-1]
            assert update.role == "user"
            assert update.content.startswith(
                "These are the solutions to the problem from other agents:"
            )
            for j in range(3):
                latest = f"d{j + 1} R{k - 1}:"
                if j == i:
                    assert latest not in update.content  # not its own
                else:
                    assert f"```{script[k - 2][1][j]}```" in update.content
                # earlier rounds' replies are not repeated in the update
                if k == 3:
                    assert f"d{j + 1} R1:" not in update.content
    assert outcome.answer == "5"  # 5, 6, 5
    assert [a.round for a in outcome.members] == [3, 3, 3]
    assert outcome.tally is not None and outcome.tally["counts"] == {"5": 2, "6": 1}


def test_debate_one_round_is_just_answering() -> None:
    rounds, outcome = drive(debate(Task(Q), view(debaters(2), DebateParams(rounds=1))),
                            [("round 1", ["The answer is 1.", "The answer is 1."])])
    assert len(rounds) == 1
    assert outcome.answer == "1"


def test_debate_majority_tie_goes_to_the_first_given() -> None:
    script = [
        ("round 1", ["The answer is 1."] * 4),
        ("round 2", ["The answer is 6.", "The answer is 5.", "The answer is 5.",
                     "The answer is 6."]),
    ]
    _, outcome = drive(debate(Task(Q), view(debaters(4), DebateParams(rounds=2))), script)
    assert outcome.answer == "6"
    assert outcome.tally is not None and outcome.tally["tied"] == ["6", "5"]


def test_debate_editor_round_and_the_editor_wins() -> None:
    ms = debaters(3, editor=True)
    script = [*debate_script(2), ("editor", ["All wrong. The answer is 7."])]
    rounds, outcome = drive(
        debate(Task(Q), view(ms, DebateParams(rounds=2, decide="editor"))), script
    )
    editor = rounds[-1]
    assert agents(editor) == ["ed"]
    assert editor.asks[0].purpose == "decide"
    assert editor.asks[0].messages[0] == Message("system", "You are ed.")
    shown = user(editor)
    assert "The debaters' final answers:" in shown
    assert "d1 (answer 5): d1 R2: The answer is 5." in shown
    assert "d2 (answer 6): d2 R2: The answer is 6." in shown
    assert "d3 (answer 5): d3 R2: The answer is 5." in shown
    assert "R1:" not in shown
    assert outcome.answer == "7"  # against the majority (5)
    assert outcome.text == "All wrong. The answer is 7."
    assert outcome.tally is not None and outcome.tally["winner"] == "5"
    assert outcome.members[-1] == MemberAnswer("ed", "7", "All wrong. The answer is 7.", 3)


def test_debate_editor_decide_without_an_editor_falls_back_to_majority() -> None:
    rounds, outcome = drive(
        debate(Task(Q), view(debaters(3), DebateParams(rounds=2, decide="editor"))),
        debate_script(2),
    )
    assert [r.label for r in rounds] == ["round 1", "round 2"]
    assert outcome.answer == "5"


def test_debate_majority_ignores_an_editor() -> None:
    rounds, outcome = drive(
        debate(Task(Q), view(debaters(3, editor=True), DebateParams(rounds=2))),
        debate_script(2),
    )
    assert "ed" not in {a for r in rounds for a in agents(r)}
    assert outcome.answer == "5"


def test_debate_long_answers_are_excerpted_from_the_end() -> None:
    long = "x" * 300 + " The answer is 9."
    script = [("round 1", [long, "The answer is 9."]), ("round 2", ["The answer is 9."] * 2)]
    rounds, _ = drive(
        debate(Task(Q), view(debaters(2), DebateParams(rounds=2, excerpt_chars=50))), script
    )
    shown = user(rounds[1], 1)
    assert "```…" + long[-50:] + "```" in shown
    assert "x" * 60 not in shown


# == mixture ===============================================================================


def moa_members(constrained: bool = False) -> list[Member]:
    return [m("p1", "proposer", constrained), m("p2", "proposer", constrained),
            m("agg", "aggregator", constrained)]


MOA_SCRIPT: Script = [
    ("layer 1", ["L1-p1 says 40", "L1-p2 says 42"]),
    ("layer 2", ["L2-p1 says 42", "L2-p2 says 41"]),
    ("layer 3", ["L3-p1 says 42", "L3-p2 says 42"]),
    ("aggregate", ["Synthesis. The answer is 42."]),
]


def test_mixture_layers_see_the_previous_layer_only() -> None:
    rounds, outcome = drive(mixture(Task(Q), view(moa_members(), MixtureParams(layers=3))),
                            MOA_SCRIPT)
    assert [agents(r) for r in rounds] == [["p1", "p2"]] * 3 + [["agg"]]
    # layer 1: the proposers alone, on the task
    for i, name in enumerate(["p1", "p2"]):
        assert rounds[0].asks[i].messages == [
            Message("system", f"You are {name}."), Message("user", SOLVE_USER)
        ]
    # layer k: shown every response of layer k-1, and nothing older
    for k in (2, 3):
        for i in range(2):
            ask = rounds[k - 1].asks[i]
            assert ask.purpose == "propose"
            assert [msg.role for msg in ask.messages] == ["system", "user"]
            shown = ask.messages[1].content
            assert shown.startswith(Q)
            assert f"1. {MOA_SCRIPT[k - 2][1][0]}" in shown
            assert f"2. {MOA_SCRIPT[k - 2][1][1]}" in shown
            assert all(f"L{j}-" not in shown for j in range(1, 4) if j != k - 1)
    # the aggregator: the last layer's responses only
    agg = user(rounds[3])
    assert "Responses from several assistants" in agg
    assert "1. L3-p1 says 42\n\n2. L3-p2 says 42" in agg
    assert "L2-" not in agg and "L1-" not in agg
    assert rounds[3].asks[0].purpose == "decide"
    assert outcome.answer == "42"
    assert outcome.text == "Synthesis. The answer is 42."
    assert [(a.name, a.round) for a in outcome.members] == [("p1", 3), ("p2", 3), ("agg", 4)]


def test_mixture_the_aggregator_decides_against_the_proposers() -> None:
    script = [("layer 1", ["The answer is 1.", "The answer is 1."]),
              ("aggregate", ["The answer is 2."])]
    _, outcome = drive(mixture(Task(Q), view(moa_members(), MixtureParams(layers=1))), script)
    assert outcome.answer == "2"


def test_mixture_proposer_layers_are_never_repaired() -> None:
    script = [("layer 1", ["no answer", "none"]), ("layer 2", ["still", "nothing"]),
              ("aggregate", ["The answer is 3."])]
    rounds, outcome = drive(
        mixture(Task(Q), view(moa_members(constrained=True), MixtureParams(layers=2))), script
    )
    assert [r.label for r in rounds] == ["layer 1", "layer 2", "aggregate"]
    assert outcome.answer == "3"


# == roleplay ==============================================================================


def roleplay_members(specifier: bool = True, constrained: bool = False) -> list[Member]:
    ms = [m("stu", "user"), m("tut", "assistant", constrained)]
    if specifier:
        ms.insert(0, m("spec", "specifier"))
    return ms


def test_roleplay_conversations_and_the_done_word_from_the_user() -> None:
    params = RoleplayParams(user_role="Student", assistant_role="Tutor", max_turns=5)
    script = [
        ("specify", ["Compute six times seven exactly."]),
        ("turn 1: instruct", ["Instruction: compute 6*5."]),
        ("turn 1: solve", ["Solution: 30."]),
        ("turn 2: instruct", ["Instruction: add 6*2."]),
        ("turn 2: solve", ["Solution: 42."]),
        ("turn 3: instruct", ["<TASK_DONE>"]),
        ("final", ["The answer is 42."]),
    ]
    rounds, outcome = drive(roleplay(Task(Q), view(roleplay_members(), params)), script)
    assert [agents(r) for r in rounds] == [
        ["spec"], ["stu"], ["tut"], ["stu"], ["tut"], ["stu"], ["tut"],
    ]
    assert [r.asks[0].purpose for r in rounds] == [
        "specify", "instruct", "solve", "instruct", "solve", "instruct", "answer",
    ]
    spec = user(rounds[0])
    assert Q in spec and "Tutor will help Student" in spec and "60 words" in spec
    specified = f"{Q}\nSpecified task: Compute six times seven exactly."

    # the user agent: its instructions are its own (assistant) messages, the solutions
    # come to it as user messages
    stu3 = rounds[5].asks[0].messages
    assert stu3[0].role == "system"
    assert stu3[0].content.startswith("You are stu.\n\nNever forget you are a Student")
    assert f"Here is the task: {specified}\n" in stu3[0].content
    assert "<TASK_DONE>" in stu3[0].content
    assert stu3[1:] == [
        Message("user", "Now start to give me instructions one by one."),
        Message("assistant", "Instruction: compute 6*5."),
        Message("user", "Solution: 30."),
        Message("assistant", "Instruction: add 6*2."),
        Message("user", "Solution: 42."),
    ]
    # the assistant agent: the other way round
    tut2 = rounds[4].asks[0].messages
    assert tut2[0].content.startswith("You are tut.\n\nNever forget you are a Tutor")
    assert f"Here is the task: {specified}\n" in tut2[0].content
    assert tut2[1:] == [
        Message("user", "Instruction: compute 6*5."),
        Message("assistant", "Solution: 30."),
        Message("user", "Instruction: add 6*2."),
    ]
    # the user said done: no further solve; the assistant is asked for the final answer
    final = rounds[6].asks[0].messages
    assert final[:-1] == [*tut2, Message("assistant", "Solution: 42.")]
    assert final[-1] == Message("user", f"The task is done. {SOLVE}")
    assert outcome.answer == "42"
    assert outcome.text == "The answer is 42."
    assert outcome.detail == {"specified": specified, "turns": 3, "finished_by": "stu"}
    assert outcome.members == [MemberAnswer("tut", "42", "The answer is 42.", 4)]


def test_roleplay_max_turns_caps_the_turns() -> None:
    script = [
        ("specify", ["S"]),
        ("turn 1: instruct", ["Instruction: a"]),
        ("turn 1: solve", ["Solution: a"]),
        ("turn 2: instruct", ["Instruction: b"]),
        ("turn 2: solve", ["Solution: b"]),
        ("final", ["The answer is 1."]),
    ]
    _, outcome = drive(
        roleplay(Task(Q), view(roleplay_members(), RoleplayParams(max_turns=2))), script
    )
    assert outcome.detail["turns"] == 2
    assert outcome.detail["finished_by"] is None
    assert outcome.answer == "1"


def test_roleplay_assistant_can_finish_too() -> None:
    script = [
        ("turn 1: instruct", ["Instruction: solve it"]),
        ("turn 1: solve", ["Solution: 42 <TASK_DONE>"]),
        ("final", ["The answer is 42."]),
    ]
    rounds, outcome = drive(
        roleplay(Task(Q), view(roleplay_members(specifier=False), RoleplayParams())), script
    )
    assert outcome.detail == {"specified": Q, "turns": 1, "finished_by": "tut"}
    assert rounds[-1].asks[0].messages[-2] == Message("assistant", "Solution: 42 <TASK_DONE>")


def test_roleplay_custom_done_word_and_empty_specification() -> None:
    script = [
        ("specify", ["   "]),
        ("turn 1: instruct", ["FINISHED"]),
        ("final", ["The answer is 42."]),
    ]
    rounds, outcome = drive(
        roleplay(Task(Q), view(roleplay_members(), RoleplayParams(done="FINISHED"))), script
    )
    assert outcome.detail == {"specified": Q, "turns": 1, "finished_by": "stu"}
    # done at once: the assistant has only its system message and the final request
    assert [msg.role for msg in rounds[-1].asks[0].messages] == ["system", "user"]


# == contest ===============================================================================


def contest_members(p: int = 3, c: int = 2) -> list[Member]:
    return [m(f"p{i}", "proposer") for i in range(1, p + 1)] + [
        m(f"c{i}", "critic") for i in range(1, c + 1)
    ]


TASK_T2I = Task("Describe an image of a lighthouse at dawn.", kind="text")


def test_contest_propose_then_critique() -> None:
    script = [
        ("propose", ["Proposal one, misty.", "Proposal two, golden.", "Proposal three."]),
        ("critique", ["B", "b"]),
    ]
    rounds, outcome = drive(contest(TASK_T2I, view(contest_members(), ContestParams())),
                            script)
    propose, critique = rounds
    assert agents(propose) == ["p1", "p2", "p3"]
    for i, ask in enumerate(propose.asks):
        assert ask.purpose == "propose"
        assert ask.messages == [
            Message("system", f"You are p{i + 1}."), Message("user", TASK_T2I.question)
        ]
    assert agents(critique) == ["c1", "c2"]
    for ask in critique.asks:
        assert ask.purpose == "vote"
        assert ask.grammar == ballot_grammar("plurality", 3)
    ballot = user(critique)
    assert ballot.startswith(f"Task: {TASK_T2I.question}")
    assert "A) Proposal one, misty." in ballot
    assert "B) Proposal two, golden." in ballot
    assert "C) Proposal three." in ballot
    assert outcome.answer == "Proposal two, golden."
    assert outcome.text == "Proposal two, golden."
    assert [(a.name, a.answer) for a in outcome.members] == [
        ("p1", "Proposal one, misty."), ("p2", "Proposal two, golden."),
        ("p3", "Proposal three."),
    ]
    assert outcome.tally is not None
    assert outcome.tally["ballots"] == {"c1": ["B"], "c2": ["B"]}
    assert outcome.tally["proposers"] == ["p1", "p2", "p3"]
    assert outcome.tally["scores"] == [0.0, 2.0, 0.0]


def test_contest_tie_goes_to_the_first_proposal() -> None:
    _, outcome = drive(
        contest(TASK_T2I, view(contest_members(), ContestParams())),
        [("propose", ["one", "two", "three"]), ("critique", ["C", "B"])],
    )
    assert outcome.answer == "two"


def test_contest_borda() -> None:
    # A: 2+0 = 2, B: 1+1 = 2, C: 0+2 = 2 ... make C win: C > B > A twice
    rounds, outcome = drive(
        contest(TASK_T2I, view(contest_members(), ContestParams(rule="borda"))),
        [("propose", ["one", "two", "three"]), ("critique", ["C > B > A", "C > A > B"])],
    )
    assert rounds[1].asks[0].grammar == ballot_grammar("borda", 3)
    assert outcome.tally is not None and outcome.tally["scores"] == [1.0, 1.0, 4.0]
    assert outcome.answer == "three"


def test_contest_a_single_proposal_skips_the_critique() -> None:
    rounds, outcome = drive(
        contest(TASK_T2I, view(contest_members(), ContestParams())),
        [("propose", ["", "  only this one  ", "\n"])],
    )
    assert len(rounds) == 1
    assert outcome.answer == "only this one"
    assert outcome.tally == {"proposals": 1}


def test_contest_no_proposal_gives_no_answer() -> None:
    _, outcome = drive(contest(TASK_T2I, view(contest_members(), ContestParams())),
                       [("propose", ["", "", ""])])
    assert outcome.answer is None


def test_contest_empty_proposals_are_not_candidates() -> None:
    rounds, outcome = drive(
        contest(TASK_T2I, view(contest_members(), ContestParams())),
        [("propose", ["", "two", "three"]), ("critique", ["B", "B"])],
    )
    ballot = user(rounds[1])
    assert "A) two" in ballot and "B) three" in ballot and "C)" not in ballot
    assert rounds[1].asks[0].grammar == ballot_grammar("plurality", 2)
    assert outcome.answer == "three"
    assert outcome.tally is not None and outcome.tally["proposers"] == ["p2", "p3"]


def test_contest_all_critics_abstain() -> None:
    _, outcome = drive(contest(TASK_T2I, view(contest_members(), ContestParams())),
                       [("propose", ["one", "two", "three"]), ("critique", ["", "?"])])
    assert outcome.answer is None


def test_contest_proposals_are_excerpted_for_critics() -> None:
    long = "word " * 100
    rounds, _ = drive(
        contest(TASK_T2I, view(contest_members(2, 1), ContestParams(excerpt_chars=50))),
        [("propose", [long, "short"]), ("critique", ["A"])],
    )
    line = next(ln for ln in user(rounds[1]).splitlines() if ln.startswith("A) "))
    assert len(line) == len("A) ") + 50


# == repair ================================================================================


def _repair_check(rnd: Round, decisive: Round, agent: str, bad: str) -> None:
    """`rnd` is the repair round for `agent`, whose reply `bad` in `decisive` was broken."""
    assert agents(rnd) == [agent]
    ask = rnd.asks[0]
    assert ask.purpose == "repair"
    assert ask.grammar == answer_grammar("number")
    assert ask.options == Options(temperature=0.0, max_tokens=24)
    original = next(a for a in decisive.asks if a.agent == agent).messages
    assert ask.messages == [*original, Message("assistant", bad),
                            Message("user", REPAIR_NUMBER)]


def test_repair_monarchy_leader() -> None:
    script = [
        ("organizer:1", ["SUBQ"]),
        ("experts:1", ["a", "b"]),
        ("summary", ["S"]),
        ("leader", ["I would go with forty-two"]),
        ("leader:repair", ["42"]),
    ]
    rounds, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(constrained=True), MonarchyParams(rounds=1))),
        script,
    )
    _repair_check(rounds[-1], rounds[-2], "king", "I would go with forty-two")
    assert outcome.answer == "42"
    assert outcome.text == "I would go with forty-two"
    assert outcome.members[-1].round == 2  # the organisation's round: rounds + 1


def test_repair_monarchy_off() -> None:
    script = [("organizer:1", ["Q"]), ("experts:1", ["a", "b"]), ("summary", ["S"]),
              ("leader", ["hmm"])]
    _, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(constrained=True),
                               MonarchyParams(rounds=1, repair=False))),
        script,
    )
    assert outcome.answer is None


def test_repair_monarchy_unconstrained_leader_is_not_repaired() -> None:
    script = [("organizer:1", ["Q"]), ("experts:1", ["a", "b"]), ("summary", ["S"]),
              ("leader", ["hmm"])]
    _, outcome = drive(
        monarchy(Task(Q), view(monarchy_members(constrained=False), MonarchyParams(rounds=1))),
        script,
    )
    assert outcome.answer is None


def test_repair_democracy_answer_and_revise() -> None:
    script = [
        ("answer", ["The answer is 5.", "thinking...", "The answer is 5."]),
        ("answer:repair", ["5"]),
        ("revise", ["The answer is 5.", "The answer is 5.", "I agree with the others"]),
        ("revise:repair", ["5"]),
    ]
    rounds, outcome = drive(
        democracy(Task(Q), view(citizens(3, constrained=True), DemocracyParams())), script
    )
    _repair_check(rounds[1], rounds[0], "c2", "thinking...")
    _repair_check(rounds[3], rounds[2], "c3", "I agree with the others")
    # the revise round continues the original reply, not the repair
    assert rounds[2].asks[1].messages[2] == Message("assistant", "thinking...")
    assert outcome.answer == "5"
    assert [a.answer for a in outcome.members] == ["5", "5", "5"]


def test_repair_debate_rounds_and_editor() -> None:
    ms = debaters(2, editor=True, constrained=True)
    script = [
        ("round 1", ["hmm", "The answer is 4."]),
        ("round 1:repair", ["4"]),
        ("round 2", ["The answer is 4.", "not sure"]),
        ("round 2:repair", ["5"]),
        ("editor", ["both have a point"]),
        ("editor:repair", ["4"]),
    ]
    rounds, outcome = drive(
        debate(Task(Q), view(ms, DebateParams(rounds=2, decide="editor"))), script
    )
    _repair_check(rounds[1], rounds[0], "d1", "hmm")
    _repair_check(rounds[3], rounds[2], "d2", "not sure")
    _repair_check(rounds[5], rounds[4], "ed", "both have a point")
    assert "d2 (answer 5): not sure" in user(rounds[4])
    assert outcome.answer == "4"


def test_repair_mixture_aggregator() -> None:
    script = [
        ("layer 1", ["x", "y"]),
        ("aggregate", ["a synthesis without a number"]),
        ("aggregate:repair", ["42"]),
    ]
    rounds, outcome = drive(
        mixture(Task(Q), view(moa_members(constrained=True), MixtureParams(layers=1))), script
    )
    _repair_check(rounds[2], rounds[1], "agg", "a synthesis without a number")
    assert outcome.answer == "42"


def test_repair_roleplay_final() -> None:
    script = [
        ("turn 1: instruct", ["<TASK_DONE>"]),
        ("final", ["done!"]),
        ("final:repair", ["42"]),
    ]
    rounds, outcome = drive(
        roleplay(Task(Q), view(roleplay_members(specifier=False, constrained=True),
                               RoleplayParams())),
        script,
    )
    _repair_check(rounds[2], rounds[1], "tut", "done!")
    assert outcome.answer == "42"
    assert outcome.members[0].round == 2  # the organisation's round: turns + 1


def test_contest_never_repairs() -> None:
    ms = [m("p1", "proposer", True), m("p2", "proposer", True), m("c1", "critic", True)]
    rounds, _ = drive(contest(TASK_T2I, view(ms, ContestParams())),
                      [("propose", ["one", "two"]), ("critique", ["nonsense"])])
    assert [r.label for r in rounds] == ["propose", "critique"]


def test_contest_with_more_than_26_proposals_still_critiques() -> None:
    gen = contest(TASK_T2I, view(contest_members(27, 1), ContestParams()))
    propose = next(gen)
    critique = gen.send(turns(propose, [f"proposal {k}" for k in range(27)]))
    assert critique.label == "critique"
