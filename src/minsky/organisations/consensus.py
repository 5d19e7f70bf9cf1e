"""`consensus`: calibrated, program-checked voting for small models (issue 15).

Plain voting lets every sample count alike: a reply cut off at max_tokens, a guess, and
a checked result. This organisation weighs them (rules in `minsky.organisations.weighing`):

- **reasoners** write a chain of thought; **programmers** write a `solution()` program
  that minsky runs in its own interpreter (`minsky.pyrun`, never `exec`); both vote on
  the number. A truncated reply, an unreadable answer or a rejected/failed program
  abstains. A reasoning answer that no program agrees with counts `cross_check` times.
- Each group has a weight; votes may be weighed by the reply's token confidence.
- Members are asked in windows of `window`, in society-file order (cheap programs and
  the greedy members first), and asking stops once the leader cannot be caught.
- **experts** (a bigger model) are asked only when the winner holds less than
  `escalate_below` of the weight cast: a cascade that pays for the big model only where
  the small ones disagree.
- Multiple-choice questions are decided by **scoring**, not generating: each ask shows
  the options in a cyclic shift and reads the probability of every letter after "The
  answer is"; averaging log-probabilities over the shifts cancels the model's prior for
  letter positions (the permutation debiasing of PriDe, arXiv 2309.03882). A backend
  without log-probabilities votes with the letter it writes.
- Free-text questions (`text`, default "critique"): the first reasoner answers, then
  critics (group `critic`, else the reasoner itself) read the answer against a
  constitution and it revises where one names a broken principle (`critique`); "drafts"
  has it write `drafts` drafts (the first greedy, the rest sampled) for a judge to pick
  by pairwise judgement in both orders (`minsky.organisations.drafts`), "both" does
  both, and "single" keeps the reasoners' vote. Chosen by measurement (docs/benchmarks.md,
  "Text answers"): drafts lost to a single member on 80 open prompts (30 % of non-tied
  verdicts, p = 0.035); critique, at 0.5B, returned the member's own answer (its critic
  never asked for a change) at 2.5× the tokens — the path that does not lose, and the one
  that gains as the member learns to critique.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import Field, field_validator

from minsky.answers import answers_match, extract_answer
from minsky.errors import MinskyError
from minsky.messages import Message
from minsky.organisations.answering import prompt, solve_messages
from minsky.organisations.base import (
    Ask,
    Member,
    MemberAnswer,
    Organisation,
    OrgRun,
    Outcome,
    Round,
    SocietyView,
    Task,
    Turn,
)
from minsky.organisations.critique import (
    Constitution,
    constitution_field,
    default_constitution,
)
from minsky.organisations.drafts import Judging, TextPath, write_text
from minsky.organisations.judging import CHOICE_PREFIX, letter_logprobs
from minsky.organisations.weighing import (
    Ballot,
    Confidence,
    confidence,
    cross_check,
    is_whole,
    settled,
    unused_quantities,
    weigh,
)
from minsky.pyrun import extract_program, program_answer, run_program_guarded
from minsky.strict import Strict

CODE_OPEN = "```python\n"
FENCE = "\n```"  # a program's closing fence: what a small model writes after it is chatter
_OPTION = re.compile(r"^\s*\(?([A-Z])[).:]\s+(.*)$")


class ConsensusParams(Strict):
    window: int = Field(0, ge=0, description="asks per round; 0: everyone at once")
    weights: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: {"reasoner": 1.0, "programmer": 1.0, "expert": 2.0},
        description="vote weight of each group")
    confidence: Confidence = "none"
    confidence_power: float = Field(1.0, ge=0.0, le=10.0)
    cross_check: float = Field(1.0, ge=0.0, le=1.0,
                               description="weight factor of a reasoning answer no program gave")
    abstain_truncated: bool = True
    # stop asking once the leader cannot be caught; "unanimous" also stops after a window
    # whose every member gave the leading answer (ESC, arXiv 2401.10480)
    stop: Literal["unbeatable", "unanimous"] = "unbeatable"
    escalate_below: float = Field(0.0, ge=0.0, le=1.0,
                                  description="ask the experts when the winner's share is lower")
    choice: Literal["score", "generate"] = "score"
    # worked programs shown before the problem: one count for every programmer, or a
    # table of counts by agent name (a name with `count` copies covers all of them), so
    # programmers of one society can see the problem in different framings
    examples: Annotated[int, Field(ge=0, le=3)] | dict[str, Annotated[int, Field(ge=0, le=3)]] = (
        Field(0, description="worked programs shown to programmers before the problem"))
    unused_quantity: float = Field(
        1.0, ge=0.0, le=1.0,
        description="weight factor of a program that never writes a quantity the question gives")
    not_whole: float = Field(1.0, ge=0.0, le=1.0,
                             description="weight factor of an answer that is not a whole number")
    # free-text questions (issue 31): drafts and a judge's choice, critique and revision
    # by a constitution, both, or one reasoner alone ("single"); critique by measurement
    # (docs/benchmarks.md, "Text answers": drafts lost to single)
    text: TextPath = "critique"
    drafts: int = Field(2, ge=1, le=8, description="drafts of a text answer")
    draft_temperature: float = Field(0.8, ge=0.0, le=2.0)
    judging: Judging = "round_robin"
    revisions: int = Field(1, ge=0, le=8, description="critique-and-revise rounds of a text answer")
    judge_by_constitution: bool = False
    constitution: Constitution = Field(default_factory=default_constitution)

    _file = field_validator("constitution", mode="before")(constitution_field)


def _params(society: SocietyView[ConsensusParams]) -> ConsensusParams:
    return society.params


@cache
def _example_turns() -> tuple[Message, ...]:
    text = resources.files("minsky.prompts").joinpath("program_examples.toml").read_text("utf-8")
    turns: list[Message] = []
    for example in tomllib.loads(text)["example"]:
        turns += [Message("user", prompt("program", Task(example["question"], "number"))),
                  Message("assistant", f"{CODE_OPEN}{example['program']}{FENCE}")]
    return tuple(turns)


def program_examples(k: int) -> list[Message]:
    """The first k worked programs (`prompts/program_examples.toml`) as chat turns."""
    return list(_example_turns()[: 2 * k])


def examples_for(member: Member, p: ConsensusParams) -> int:
    """How many worked programs `member` is shown (a table names society-file agents, so
    an entry covers all of an agent's copies)."""
    if isinstance(p.examples, int):
        return p.examples
    return p.examples.get(member.agent or member.name, 0)


def _check(p: ConsensusParams, agents: list[str]) -> tuple[str, str] | None:
    for agent in p.examples if isinstance(p.examples, dict) else ():
        if agent not in agents:
            return "examples", f"no agent named {agent!r}; agents: {', '.join(agents)}"
    return None


def _ask(member: Member, task: Task, p: ConsensusParams) -> Ask:
    options = member.options
    update: dict[str, object] = {}
    if p.confidence != "none":
        update["logprobs"] = True
    prefix = ""
    if member.group == "programmer":
        messages = [Message("system", member.role),
                    *program_examples(examples_for(member, p)),
                    Message("user", prompt("program", task))]
        if member.prefill:
            # the reply starts inside the code block, so the first fence to come closes it
            # and the chatter small models add after their code is never generated
            prefix = CODE_OPEN
            update["stop"] = [*options.stop, FENCE]
    else:
        messages = solve_messages(member, task)
    return Ask(member.name, messages, purpose="answer", prefix=prefix,
               options=options.model_copy(update=update) if update else None)


def _ballot(member: Member, turn: Turn, task: Task, p: ConsensusParams) -> Ballot:
    reply = turn.reply
    weight = p.weights.get(member.group, 1.0)
    weight *= confidence(reply.logprobs, p.confidence) ** p.confidence_power
    if reply.finish_reason == "error":
        return Ballot(member.name, None, member.group, weight, "error")
    if reply.finish_reason == "length" and p.abstain_truncated:
        return Ballot(member.name, None, member.group, weight, "truncated")
    if member.group == "programmer":
        text = f"{turn.ask.prefix}{reply.text}{FENCE}" if turn.ask.prefix else reply.text
        program = extract_program(text)
        if program is None:
            return Ballot(member.name, None, member.group, weight, "no program")
        result = run_program_guarded(program)
        answer = program_answer(result)
        if answer is None:
            why = result.error or "no number returned"
            return Ballot(member.name, None, member.group, weight, f"program: {why}")
        if p.unused_quantity < 1.0 and unused_quantities(task.question, program):
            weight *= p.unused_quantity
        return Ballot(member.name, answer, member.group, _whole_weight(weight, answer, p))
    answer = extract_answer(reply.text, task.kind, task.choices)
    if answer is None:
        return Ballot(member.name, None, member.group, weight, "no answer")
    if task.kind == "number":
        weight = _whole_weight(weight, answer, p)
    return Ballot(member.name, answer, member.group, weight)


def _whole_weight(weight: float, answer: str, p: ConsensusParams) -> float:
    return weight if p.not_whole == 1.0 or is_whole(answer) else weight * p.not_whole


def _decide(ballots: list[Ballot], task: Task, p: ConsensusParams, remaining: float = 0.0,
            programs_to_come: bool = False
            ) -> tuple[dict[str, object], str | None, bool, float]:
    """The tally, winner, whether it is settled with `remaining` weight to come, share."""
    checked = cross_check(ballots, "reasoner", "programmer", p.cross_check, task.kind)
    tally = weigh(checked, task.kind)
    leader = tally.winner

    def leaders(b: Ballot) -> bool:
        return b.answer is not None and leader is not None and answers_match(
            b.answer, leader, task.kind)

    # a program still to come can restore down-weighted reasoning votes for the
    # runner-up, so what they lost counts as weight still to come
    swing = sum(b.weight - c.weight for b, c in zip(ballots, checked, strict=True)
                if b.answer is not None and not leaders(b))
    if programs_to_come and not any(b.group == "programmer" and b.answer is not None
                                    for b in ballots):
        # and the first program vote can cut the leader's unconfirmed reasoning votes
        swing += sum(c.weight * (1 - p.cross_check) for c in checked
                     if c.group == "reasoner" and leaders(c) and not c.abstained)
    return tally.to_dict(), leader, settled(tally, remaining + swing), tally.share


def consensus(task: Task, society: SocietyView[ConsensusParams]) -> OrgRun:
    p = _params(society)
    pool = [m for m in society.members if m.group not in ("expert", "judge", "critic")]
    experts = [m for m in society.members if m.group == "expert"]
    if not pool:  # experts alone (no group needs a member): they answer first-hand
        pool, experts = experts, []
    if not pool:  # judges and critics only read answers: someone must write one
        raise MinskyError("consensus needs a reasoner, programmer or expert member; "
                          "judge and critic members only read answers")
    stem, options = _options(task.question)
    scorable = 2 <= len(options) <= 26 and len(options) == len(task.choices)
    # a society of programmers alone (`program`) answers other kinds in words
    talkers = [m for m in pool if m.group != "programmer"] or [
        replace(m, group="reasoner") for m in pool]
    if task.kind == "choice" and p.choice == "score" and scorable:
        return (yield from _score_choices(task, talkers, stem, options))
    if task.kind == "text" and p.text != "single":
        return (yield from _text(task, society, talkers[0]))
    if task.kind != "number":
        pool = talkers  # a program answers numbers
    window = p.window or len(pool)
    ballots: list[Ballot] = []
    members: list[MemberAnswer] = []
    rounds = 0
    tally: dict[str, object] = {}
    winner, share = None, 0.0
    for start in range(0, len(pool), window):
        batch = pool[start : start + window]
        rounds += 1
        turns = yield Round(f"answer {rounds}", [_ask(m, task, p) for m in batch])
        for m, t in zip(batch, turns, strict=True):
            ballots.append(_ballot(m, t, task, p))
            members.append(MemberAnswer(m.name, ballots[-1].answer, t.text, rounds))
        rest = pool[start + window :]
        remaining = sum(p.weights.get(m.group, 1.0) for m in rest)
        tally, winner, done, share = _decide(ballots, task, p, remaining,
                                             any(m.group == "programmer" for m in rest))
        last = ballots[-len(batch):]
        agreed = winner is not None and all(
            b.answer is not None and not b.abstained and answers_match(b.answer, winner,
                                                                       task.kind)
            for b in last)
        if done or (p.stop == "unanimous" and agreed and len(last) > 1):
            break
    escalated = bool(experts) and (share < p.escalate_below or
                                   (winner is None and p.escalate_below > 0))
    if escalated:
        rounds += 1
        turns = yield Round("escalate", [_ask(m, task, p) for m in experts])
        for m, t in zip(experts, turns, strict=True):
            ballots.append(_ballot(m, t, task, p))
            members.append(MemberAnswer(m.name, ballots[-1].answer, t.text, rounds))
        tally, winner, _, share = _decide(ballots, task, p)
    detail = {"asked": len(ballots), "of": len(pool) + len(experts), "escalated": escalated}
    return Outcome(winner, members, tally, detail)


def _text(task: Task, society: SocietyView[ConsensusParams], author: Member) -> OrgRun:
    """A free-text question by the society's text path: the first reasoner writes, the
    judge group's member (else the reasoner) judges, the critic group (else the reasoner
    itself) critiques."""
    p = society.params
    judge = next(iter(society.group("judge")), author)
    critics = society.group("critic") or [author]
    return (yield from write_text(task, author, judge, critics, p.text, p.drafts,
                                  p.draft_temperature, p.judging, p.revisions, p.constitution,
                                  p.judge_by_constitution))


def _options(question: str) -> tuple[str, list[str]]:
    """The stem of a choice question and its option texts, in order: the last run of
    lines lettered A, B, C, … in sequence after the stem (a list of "I." / "II."
    statements in the stem is not options, and a lettered list inside the stem — an
    answer a judge is shown — gives way to the options that end the question). No
    options found: an empty list."""
    lines = question.splitlines()
    for first in reversed(range(len(lines))):
        line = lines[first]
        m = _OPTION.match(line)
        if first == 0 or not m or m.group(1) != "A":
            continue
        options: list[str] = []
        for rest in lines[first:]:
            m = _OPTION.match(rest)
            if m and m.group(1) == chr(65 + len(options)):
                options.append(m.group(2).strip())
            elif options and rest.strip() and not m:
                options[-1] += "\n" + rest  # an option that runs over several lines
            else:
                break
        if len(options) >= 2:
            return "\n".join(lines[:first]).strip(), options
    return question.strip(), []


def _shown(stem: str, options: list[str], shift: int) -> str:
    """The question with its options rotated by `shift` and relabelled A, B, …"""
    n = len(options)
    lines = [f"{chr(65 + k)}) {options[(k + shift) % n]}" for k in range(n)]
    return stem + "\n" + "\n".join(lines)


def _score_choices(task: Task, pool: list[Member], stem: str, options: list[str]) -> OrgRun:
    n = len(options)
    letters = "".join(chr(65 + k) for k in range(n))
    asks, shown = [], []
    for shift in range(n):
        member = pool[shift % len(pool)]
        question = _shown(stem, options, shift)
        text = prompt("choose", Task(question, "choice", letters))
        asks.append(Ask(member.name, [Message("system", member.role), Message("user", text)],
                        purpose="score", prefix=CHOICE_PREFIX,
                        options=member.options.model_copy(update={
                            "temperature": 0.0, "max_tokens": 1, "top_logprobs": 20})))
        shown.append(shift)
    turns = yield Round("score", asks)
    totals = [0.0] * n
    members = []
    for shift, turn in zip(shown, turns, strict=True):
        top = turn.reply.top_logprobs[0] if turn.reply.top_logprobs else None
        scores = letter_logprobs(top, letters) if top else None
        if scores is None:  # no log-probabilities: the letter written is a one-hot vote
            said = extract_answer(turn.text, "choice", letters)
            scores = [0.0 if said == chr(65 + k) else -20.0 for k in range(n)]
        # the letter shown at position k stands for original option (k + shift) % n
        for k in range(n):
            totals[(k + shift) % n] += scores[k] / n
        pick = max(range(n), key=lambda k: scores[k])
        members.append(MemberAnswer(turn.ask.agent, chr(65 + (pick + shift) % n), turn.text))
    best = max(range(n), key=lambda k: totals[k])
    tally = {"scores": {chr(65 + k): round(totals[k], 4) for k in range(n)}}
    return Outcome(chr(65 + best), members, tally, {"shifts": n})


CONSENSUS = Organisation(
    "consensus", consensus, ConsensusParams,
    "weighted vote of reasoners and checked programs, with early stopping and escalation; "
    "choice questions by scoring options",
    groups={"reasoner": (0, None), "programmer": (0, None), "expert": (0, None),
            "judge": (0, 1), "critic": (0, None)},
    check=_check,
)
