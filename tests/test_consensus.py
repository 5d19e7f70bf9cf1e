"""The voting rules of calibrated societies (abstention, weights, cross-check, confidence,
stopping) with plain ballots, and the `consensus` organisation driven with scripted
replies: who is asked in which window, what abstains, when it stops, when it escalates,
and how options are scored."""

from __future__ import annotations

import math
from collections.abc import Generator

import pytest

from minsky.messages import ChatReply, Options
from minsky.organisations.base import Member, Outcome, Round, SocietyView, Task, Turn
from minsky.organisations.base import drive as base_drive
from minsky.organisations.consensus import (
    CODE_OPEN,
    FENCE,
    ConsensusParams,
    _options,
    consensus,
    examples_for,
)
from minsky.organisations.judging import CHOICE_PREFIX, letter_logprobs
from minsky.organisations.weighing import (
    Ballot,
    confidence,
    cross_check,
    is_whole,
    settled,
    unused_quantities,
    weigh,
)
from minsky.pyrun import extract_program, program_answer, run_program

# == the rules =============================================================================


def test_abstentions_do_not_vote() -> None:
    tally = weigh([Ballot("a", "5", abstained="truncated"), Ballot("b", "7"),
                   Ballot("c", None), Ballot("d", "5", abstained="program: step limit")])
    assert tally.winner == "7"
    assert tally.scores == {"7": 1.0}
    assert tally.abstained == {"a": "truncated", "c": "no answer", "d": "program: step limit"}


def test_everyone_abstaining_gives_no_winner() -> None:
    tally = weigh([Ballot("a", None), Ballot("b", "3", abstained="truncated")])
    assert tally.winner is None and tally.share == 0.0


def test_weights_decide_and_equal_answers_share_a_bucket() -> None:
    tally = weigh([Ballot("a", "12"), Ballot("b", "12.0"), Ballot("c", "7", weight=2.5)])
    assert tally.scores == {"12": 2.0, "7": 2.5}
    assert tally.winner == "7"
    assert tally.votes == {"12": ["a", "b"], "7": ["c"]}
    assert tally.share == pytest.approx(2.5 / 4.5)


def test_ties_go_to_the_first_answer_given() -> None:
    assert weigh([Ballot("greedy", "4"), Ballot("x", "9"), Ballot("y", "9"),
                  Ballot("z", "4")]).winner == "4"
    assert weigh([Ballot("x", "9"), Ballot("greedy", "4")]).winner == "9"


def test_cross_check_downweights_reasoning_no_program_gave() -> None:
    ballots = [Ballot("r1", "10", "reasoner"), Ballot("r2", "12", "reasoner"),
               Ballot("p1", "12", "programmer", 0.5), Ballot("p2", None, "programmer")]
    checked = cross_check(ballots, "reasoner", "programmer", 0.25)
    assert [b.weight for b in checked] == [0.25, 1.0, 0.5, 1.0]
    assert weigh(checked).winner == "12"
    # without the check the greedy reasoner's "10" would tie "12" and win
    assert weigh([Ballot("r1", "10", "reasoner"), Ballot("r2", "12", "reasoner")]).winner == "10"


def test_cross_check_waits_for_a_program_vote() -> None:
    ballots = [Ballot("r1", "10", "reasoner"), Ballot("p1", None, "programmer")]
    assert cross_check(ballots, "reasoner", "programmer", 0.0) == ballots


def test_confidence_from_logprobs() -> None:
    lps = [math.log(0.5)] * 10 + [math.log(0.9)] * 32
    assert confidence(lps, "none") == 1.0
    assert confidence(None, "mean") == 1.0
    assert confidence(lps, "tail") == pytest.approx(0.9)
    assert confidence(lps, "mean") == pytest.approx(math.exp((10 * math.log(0.5)
                                                              + 32 * math.log(0.9)) / 42))


def test_settled_when_the_rest_cannot_catch_up() -> None:
    tally = weigh([Ballot("a", "3"), Ballot("b", "3"), Ballot("c", "3"), Ballot("d", "5")])
    assert tally.margin == 2.0
    assert settled(tally, 1.0)
    assert not settled(tally, 2.0)  # a tie is still possible
    assert not settled(weigh([Ballot("a", None)]), 0.0)


def test_unused_quantities_counts_what_a_program_never_writes() -> None:
    question = "Tom has 1,200 apples, gives 20% away and sells 3 crates at $4.50."
    assert unused_quantities(question, "a = 1200\np = 0.2\nc = 3\nprice = 4.5") == 0
    assert unused_quantities(question, "a = 1200\np = 20 / 100\nc = 3") == 1  # no 4.50
    assert unused_quantities(question, "a = 1_200") == 3
    # commas in a program separate numbers: max(3,4) writes 3 and 4, not 34
    assert unused_quantities("between 3 and 4", "x = max(3,4)") == 0
    assert unused_quantities("no numbers here", "x = 5") == 0


def test_is_whole() -> None:
    assert [is_whole(a) for a in ("12", "12.0", "-3", "0", "1,200")] == [True] * 5
    assert [is_whole(a) for a in ("2.5", "1/3", "abc", "", None)] == [False] * 5


# == the organisation ======================================================================

OPTS = Options(temperature=0.5, max_tokens=100)
# what a member continues after the "```python" it is prefilled with, up to the closing fence
PROGRAM_12 = "def solution():\n    apples = 3\n    return apples * 4"


def member(name: str, group: str, prefill: bool = True, agent: str = "") -> Member:
    return Member(name, f"You are {name}.", OPTS, True, group, prefill, agent)


def drive(gen: Generator[Round, list[Turn], Outcome], replies: dict[str, ChatReply | str]
          ) -> tuple[list[Round], Outcome]:
    """Run to the end; every member's reply is looked up by its name (a str is a reply
    that stopped normally)."""
    def answer(rnd: Round) -> list[Turn]:
        got = [replies[a.agent] for a in rnd.asks]
        return [Turn(a, r if isinstance(r, ChatReply) else ChatReply(r))
                for a, r in zip(rnd.asks, got, strict=True)]

    return base_drive(gen, answer)


def run(members: list[Member], replies: dict[str, ChatReply | str], task: Task | None = None,
        **params: object) -> tuple[list[Round], Outcome]:
    view = SocietyView(members, ConsensusParams.model_validate(params))
    return drive(consensus(task or Task("Tom has 3 bags of 4 apples. How many?"), view), replies)


def test_programs_and_reasoners_vote_together_and_truncation_abstains() -> None:
    members = [member("greedy", "reasoner"), member("coder-1", "programmer"),
               member("coder-2", "programmer"), member("thinker", "reasoner")]
    rounds, out = run(members, {
        "greedy": "3 times 4. The answer is 10.",
        "coder-1": PROGRAM_12,
        "coder-2": ChatReply("def solution():\n    x = 1", finish_reason="length"),
        "thinker": ChatReply("so the answer is 12 12 12 12", finish_reason="length"),
    })
    assert [r.label for r in rounds] == ["answer 1"]
    assert out.answer == "10"  # 10 and 12 tie at one vote each; greedy spoke first
    assert out.tally is not None
    assert out.tally["abstained"] == {"coder-2": "truncated", "thinker": "truncated"}
    assert [m.answer for m in out.members] == ["10", "12", None, None]


def test_programmer_asks_carry_the_program_prompt_and_fence_stop() -> None:
    members = [member("greedy", "reasoner"), member("coder", "programmer")]
    rounds, out = run(members, {"greedy": "The answer is 12.", "coder": PROGRAM_12})
    ask = rounds[0].asks[1]
    assert "Write a Python function `solution()`" in ask.messages[-1].content
    assert ask.prefix == CODE_OPEN
    assert ask.options is not None and FENCE in ask.options.stop
    assert rounds[0].asks[0].options is None  # a reasoner keeps its own options
    assert [m.answer for m in out.members] == ["12", "12"]


def test_programmers_see_the_worked_examples_they_are_given() -> None:
    members = [member("greedy", "reasoner"), member("coder", "programmer")]
    rounds, _ = run(members, {"greedy": "The answer is 12.", "coder": PROGRAM_12}, examples=2)
    reasoner, coder = rounds[0].asks
    roles = [m.role for m in coder.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    # each worked example is a question in the program prompt and a fenced program that
    # minsky's own interpreter runs to a number
    for question, program in zip(coder.messages[1:5:2], coder.messages[2:5:2], strict=True):
        assert "Write a Python function `solution()`" in question.content
        assert program.content.startswith(CODE_OPEN) and program.content.endswith(FENCE)
        code = extract_program(program.content)
        assert code is not None and program_answer(run_program(code)) is not None
    assert "Tom has 3 bags" in coder.messages[-1].content
    assert all(m.role != "assistant" for m in reasoner.messages)  # reasoners see none
    with pytest.raises(ValueError, match="examples"):
        ConsensusParams.model_validate({"examples": 4})  # three are written


def test_examples_may_be_given_to_some_programmers_by_name() -> None:
    members = [member("plain", "programmer"), member("shown-1", "programmer", agent="shown"),
               member("shown-2", "programmer", agent="shown"), member("shown", "programmer"),
               member("shownx", "programmer"), member("greedy", "reasoner"),
               member("shown-3", "programmer", agent="other")]
    rounds, _ = run(members, {m.name: PROGRAM_12 for m in members if m.name != "greedy"}
                    | {"greedy": "The answer is 12."}, examples={"shown": 1})
    seen = {a.agent: sum(m.role == "assistant" for m in a.messages) for a in rounds[0].asks}
    # the agent "shown" of the society file and its copies see one; the names do not
    # decide it (shown-3 is a copy of another agent)
    assert seen == {"plain": 0, "shown-1": 1, "shown-2": 1, "shown": 1, "shownx": 0,
                    "greedy": 0, "shown-3": 0}


def test_the_default_society_names_its_shown_programmers() -> None:
    from minsky.society import load

    society = load("consensus")
    params = society.params
    assert isinstance(params, ConsensusParams)
    shown = [m.name for m in society.members({}) if examples_for(m, params)]
    assert shown == ["shown-1", "shown-2", "shown-3"]


def test_a_programmer_whose_backend_cannot_prefill_writes_its_own_fences() -> None:
    members = [member("greedy", "reasoner"), member("coder", "programmer", prefill=False)]
    fenced = f"Here is the code:\n\n```python\n{PROGRAM_12}\n```\nIt multiplies."
    rounds, out = run(members, {"greedy": "The answer is 10.", "coder": fenced})
    ask = rounds[0].asks[1]
    assert ask.prefix == "" and ask.options is None  # no stop: it would end at the opening
    assert [m.answer for m in out.members] == ["10", "12"]


def test_a_rejected_program_abstains_with_its_reason() -> None:
    members = [member("greedy", "reasoner"), member("coder", "programmer")]
    _, out = run(members, {
        "greedy": "The answer is 7.",
        "coder": "def solution():\n    return ().__class__.__bases__[0]",
    })
    assert out.answer == "7"
    assert out.tally is not None
    assert str(out.tally["abstained"]["coder"]).startswith("program: ")  # type: ignore[index]


def test_cross_check_lets_a_program_overrule_the_greedy_reasoner() -> None:
    members = [member("greedy", "reasoner"), member("r2", "reasoner"),
               member("coder", "programmer")]
    replies: dict[str, ChatReply | str] = {"greedy": "The answer is 10.",
                                           "r2": "The answer is 12.", "coder": PROGRAM_12}
    _, plain = run(members, replies, weights={"reasoner": 1.0, "programmer": 0.5})
    _, checked = run(members, replies, weights={"reasoner": 1.0, "programmer": 0.5},
                     cross_check=0.5)
    assert plain.answer == "12"  # 12 has 1.5 against 1: the program tips it
    assert checked.answer == "12"
    assert checked.tally is not None and plain.tally is not None
    assert checked.tally["scores"] == {"10": 0.5, "12": 1.5}  # the unconfirmed 10 halved
    assert plain.tally["scores"] == {"10": 1.0, "12": 1.5}
    _, program_alone = run(members, {**replies, "r2": "The answer is 10."},
                           weights={"reasoner": 1.0, "programmer": 0.9}, cross_check=0.4)
    # two unconfirmed reasoners: 2 × 0.4 = 0.8 < 0.9 for the program's 12
    assert program_alone.answer == "12"


def test_windows_stop_once_the_leader_cannot_be_caught() -> None:
    members = [member(f"r{i}", "reasoner") for i in range(1, 7)]
    replies: dict[str, ChatReply | str] = {f"r{i}": "The answer is 12." for i in range(1, 7)}
    rounds, out = run(members, replies, window=2)
    # after r1..r4 agree (margin 4 > 2 still to come) the last window is never asked
    assert [r.label for r in rounds] == ["answer 1", "answer 2"]
    assert [a.agent for r in rounds for a in r.asks] == ["r1", "r2", "r3", "r4"]
    assert out.answer == "12" and out.detail["asked"] == 4 and out.detail["of"] == 6


def test_a_unanimous_window_stops_early_when_asked_to() -> None:
    members = [member(f"r{i}", "reasoner") for i in range(1, 7)]
    replies: dict[str, ChatReply | str] = {f"r{i}": "The answer is 12." for i in range(1, 7)}
    replies["r2"] = ChatReply("The answer is 12 12 12", finish_reason="length")
    rounds, out = run(members, replies, window=2, stop="unanimous")
    # window 1 has an abstention, so it is not unanimous; window 2 is
    assert [a.agent for r in rounds for a in r.asks] == ["r1", "r2", "r3", "r4"]
    assert out.answer == "12"
    rounds, _ = run(members, {**replies, "r2": "The answer is 12."}, window=2,
                    stop="unanimous")
    assert [a.agent for r in rounds for a in r.asks] == ["r1", "r2"]


def test_windows_go_on_while_the_vote_is_open() -> None:
    members = [member(f"r{i}", "reasoner") for i in range(1, 5)]
    replies: dict[str, ChatReply | str] = {"r1": "The answer is 12.", "r2": "The answer is 9.",
                                           "r3": "The answer is 9.", "r4": "The answer is 12."}
    rounds, out = run(members, replies, window=2)
    assert len(rounds) == 2
    assert out.answer == "12"  # 2–2: the first answer given wins the tie


def test_experts_are_asked_only_when_the_small_members_disagree() -> None:
    members = [member("r1", "reasoner"), member("r2", "reasoner"), member("big", "expert")]
    split: dict[str, ChatReply | str] = {"r1": "The answer is 10.", "r2": "The answer is 12.",
                                         "big": "The answer is 12."}
    rounds, out = run(members, split, escalate_below=0.6)
    assert [r.label for r in rounds] == ["answer 1", "escalate"]
    assert rounds[1].asks[0].agent == "big"
    assert out.answer == "12" and out.detail["escalated"] is True
    agreed = {**split, "r2": "The answer is 10."}
    rounds, out = run(members, agreed, escalate_below=0.6)
    assert [r.label for r in rounds] == ["answer 1"] and out.answer == "10"


def test_confidence_weights_votes_and_asks_for_logprobs() -> None:
    members = [member("sure", "reasoner"), member("unsure-1", "reasoner"),
               member("unsure-2", "reasoner")]
    rounds, out = run(members, {
        "sure": ChatReply("The answer is 5.", logprobs=[-0.01] * 8),
        "unsure-1": ChatReply("The answer is 6.", logprobs=[-2.0] * 8),
        "unsure-2": ChatReply("The answer is 6.", logprobs=[-2.0] * 8),
    }, confidence="mean")
    assert all(a.options is not None and a.options.logprobs for a in rounds[0].asks)
    assert out.answer == "5"  # 0.99 against 2 × 0.135


def test_text_questions_leave_the_programmers_out() -> None:
    members = [member("r1", "reasoner"), member("coder", "programmer")]
    rounds, out = run(members, {"r1": "The answer is Paris."},
                      task=Task("What is the capital of France?", "text"), text="single")
    assert [a.agent for a in rounds[0].asks] == ["r1"]
    assert out.answer == "paris"


CHOICE_Q = "Which is a mammal?\nA) trout\nB) whale\nC) eagle"


def top(**letters: float) -> list[dict[str, float]]:
    return [{f" {k}": math.log(v) for k, v in letters.items()}]


def test_choices_are_scored_over_cyclic_shifts() -> None:
    members = [member("r1", "reasoner"), member("r2", "reasoner")]
    task = Task(CHOICE_Q, "choice", "ABC")
    view = SocietyView(members, ConsensusParams())
    gen = consensus(task, view)
    rnd = next(gen)
    assert rnd.label == "score" and len(rnd.asks) == 3
    assert [a.agent for a in rnd.asks] == ["r1", "r2", "r1"]
    shown = [a.messages[-1].content for a in rnd.asks]
    assert "A) trout\nB) whale\nC) eagle" in shown[0]
    assert "A) whale\nB) eagle\nC) trout" in shown[1]
    assert "A) eagle\nB) trout\nC) whale" in shown[2]
    for a in rnd.asks:
        assert a.prefix == CHOICE_PREFIX
        assert a.options is not None and a.options.max_tokens == 1
        assert a.options.top_logprobs == 20 and a.options.temperature == 0.0
    # a model that always prefers the first letter a little, and knows whales are mammals:
    # the position prior cancels over the shifts
    replies = [top(A=0.5, B=0.4, C=0.1),   # shift 0: whale at B
               top(A=0.7, B=0.2, C=0.1),   # shift 1: whale at A
               top(A=0.4, B=0.1, C=0.5)]  # shift 2: whale at C
    try:
        gen.send([Turn(a, ChatReply("", top_logprobs=t)) for a, t in zip(rnd.asks, replies,
                                                                           strict=True)])
    except StopIteration as stop:
        out = stop.value
    assert out.answer == "B"
    assert [m.answer for m in out.members] == ["A", "B", "B"]


def test_choices_without_logprobs_vote_with_the_letter_written() -> None:
    members = [member("r1", "reasoner")]
    _, out = drive(consensus(Task(CHOICE_Q, "choice", "ABC"),
                             SocietyView(members, ConsensusParams())),
                   {"r1": "B"})
    # r1 is asked three times (one per shift) and says "B" each time: whale, eagle, trout;
    # a model that only ever says "B" has no preference, and the tie goes to option A
    assert [m.answer for m in out.members] == ["B", "C", "A"]
    assert out.tally is not None and len(set(out.tally["scores"].values())) == 1
    assert out.answer == "A"


def test_letter_logprobs_merge_spellings_and_renormalise() -> None:
    got = letter_logprobs({" A": math.log(0.3), "A": math.log(0.1), "(B": math.log(0.4),
                           " the": math.log(0.2)}, "ABC")
    assert got is not None
    assert [math.exp(x) for x in got[:2]] == pytest.approx([0.4 / 0.8, 0.4 / 0.8])
    # unseen: as likely as the least likely token listed (" A" 0.1 here; the top-k cutoff)
    assert math.exp(got[2]) == pytest.approx(0.1 / 0.8)
    assert letter_logprobs({" the": -0.1}, "ABC") is None
    assert letter_logprobs({" a": -0.1, " the": -1.0}, "ABC") is None  # an article


def test_options_are_the_lettered_lines_in_sequence() -> None:
    q = ("Which are true?\nI. Water boils at 100 C.\nII. Ice sinks.\nA) I only\nB) II only\n"
         "C) both")
    assert _options(q) == ("Which are true?\nI. Water boils at 100 C.\nII. Ice sinks.",
                           ["I only", "II only", "both"])
    assert _options("What?\nA) one\nB) two\n\nAnswer with the letter.")[1] == ["one", "two"]
    assert _options("What is 2+2? A) 3 B) 4")[1] == []  # one line: nothing to score


def test_unlettered_choices_fall_back_to_generating() -> None:
    members = [member("r1", "reasoner")]
    rounds, out = run(members, {"r1": "It is 4. The answer is B."},
                      task=Task("What is 2+2? A) 3 B) 4", "choice", "AB"))
    assert rounds[0].label == "answer 1" and out.answer == "B"


def test_the_first_program_vote_is_waited_for_before_stopping() -> None:
    # three unconfirmed reasoners lead 3 to 0, but with cross_check 0.1 one program vote
    # for another answer cuts them to 0.3: stopping after them would be premature
    members = [member(f"r{i}", "reasoner") for i in (1, 2, 3)] + [member("p1", "programmer")]
    replies: dict[str, ChatReply | str] = {f"r{i}": "The answer is 10." for i in (1, 2, 3)}
    replies["p1"] = PROGRAM_12
    _, everyone = run(members, replies, cross_check=0.1)
    rounds, windowed = run(members, replies, cross_check=0.1, window=3)
    assert everyone.answer == windowed.answer == "12"
    assert len(rounds) == 2


def test_a_program_that_leaves_out_a_quantity_counts_less() -> None:
    task = Task("Tom has 3 bags of 4 apples and eats 2. How many are left?")
    members = [member("coder", "programmer"), member("sampler", "programmer")]
    replies: dict[str, ChatReply | str] = {
        "coder": "def solution():\n    return 3 * 4",  # never writes the 2 he eats
        "sampler": "def solution():\n    return 3 * 4 - 2"}
    _, plain = run(members, replies, task)
    _, weighed = run(members, replies, task, unused_quantity=0.5)
    assert plain.answer == "12"  # a tie: the first program's answer
    assert weighed.answer == "10"
    assert weighed.tally is not None and weighed.tally["scores"] == {"12": 0.5, "10": 1.0}


def test_an_answer_that_is_not_whole_counts_less() -> None:
    members = [member("greedy", "reasoner"), member("coder", "programmer")]
    replies: dict[str, ChatReply | str] = {
        "greedy": "The answer is 12.5.", "coder": PROGRAM_12}
    _, plain = run(members, replies)
    _, weighed = run(members, replies, not_whole=0.25)
    assert plain.answer == "12.5"  # a tie: the first answer
    assert weighed.answer == "12"
    assert weighed.tally is not None and weighed.tally["scores"] == {"12.5": 0.25, "12": 1.0}
