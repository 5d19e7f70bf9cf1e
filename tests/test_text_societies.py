"""Societies for text answers (issue 31): critique and revise by a constitution, drafts
chosen by pairwise judgement in both orders, the default society's text path, and the
preference pairs they leave for DPO.

The organisations are driven as sans-IO generators with scripted turns; the runner, the
run log and the CLI with the scripted and echo backends that ship in the package.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Options
from minsky.organisations.base import Member, Outcome, Round, SocietyView, Task, Turn, drive
from minsky.organisations.consensus import ConsensusParams, consensus
from minsky.organisations.critique import (
    Constitution,
    CritiqueParams,
    critique,
    default_constitution,
    load_constitution,
    read_critique,
)
from minsky.organisations.drafts import DraftsParams, drafts
from minsky.organisations.judging import combine, tournament
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import Society
from minsky.star.prefs import preference_rows

OPTS = Options(temperature=0.0, max_tokens=100, seed=7)
Q = "Explain in two sentences why the sky is blue."
TASK = Task(Q, "text")


def member(name: str, group: str = "member") -> Member:
    return Member(name, f"You are {name}.", OPTS, True, group, True)


Reply = str | ChatReply


def scripted(script: Sequence[tuple[str, Callable[[Round], Sequence[Reply]]]]
             ) -> tuple[Callable[[Round], list[Turn]], list[Round]]:
    """An answerer for `drive`: round i must carry label script[i][0]; its replies come
    from script[i][1](round) (a str is a reply that stopped normally)."""
    rounds: list[Round] = []

    def answer(rnd: Round) -> list[Turn]:
        i = len(rounds)
        rounds.append(rnd)
        assert i < len(script), f"unexpected extra round {rnd.label!r}"
        label, replies = script[i]
        assert rnd.label == label, f"round {i + 1}: {rnd.label!r} != {label!r}"
        got = list(replies(rnd))
        assert len(got) == len(rnd.asks), f"{label}: scripted the wrong number of replies"
        return [Turn(a, r if isinstance(r, ChatReply) else ChatReply(r))
                for a, r in zip(rnd.asks, got, strict=True)]

    return answer, rounds


def each(*texts: Reply) -> Callable[[Round], Sequence[Reply]]:
    return lambda rnd: texts


def run(gen: Any, script: Sequence[tuple[str, Callable[[Round], Sequence[Reply]]]]
        ) -> tuple[list[Round], Outcome]:
    answer, rounds = scripted(script)
    _, outcome = drive(gen, answer)
    return rounds, outcome


# == critique and revise ====================================================================

DRAFT = "Because of the ocean. The answer is the ocean reflects."
BETTER = "Air scatters blue light most (Rayleigh scattering). The answer is scattering."


def test_critique_revises_until_every_critic_says_no_change() -> None:
    view = SocietyView([member("writer", "author"), member("c1", "critic"),
                        member("c2", "critic")], CritiqueParams(rounds=3))
    rounds, out = run(critique(TASK, view), [
        ("draft", each(DRAFT)),
        ("critique 1", each("Principle: correct\nThe ocean does not make the sky blue.",
                            "No change.")),
        ("revise 1", each(BETTER)),
        ("critique 2", each("No change.", "no changes needed")),
    ])
    # critics read the current answer against every principle of the constitution
    critic_prompt = rounds[1].asks[0].messages[-1].content
    assert DRAFT in critic_prompt and Q in critic_prompt
    assert all(p.name in critic_prompt for p in default_constitution().principles)
    assert rounds[3].asks[0].messages[-1].content.count(BETTER) == 1
    # the revision continues the author's own conversation, with only the change asked
    revise = rounds[2].asks[0]
    assert revise.agent == "writer" and revise.purpose == "revise"
    assert [m.role for m in revise.messages] == ["system", "user", "assistant", "user"]
    assert revise.messages[2].content == DRAFT
    assert "correct: The ocean does not make the sky blue." in revise.messages[3].content
    assert out.text == BETTER and out.answer == "scattering"
    assert out.detail["stopped"] == "no change" and out.detail["revisions"] == 1
    assert [c["verdict"] for c in out.detail["critiques"]] == [
        "change", "no change", "no change", "no change"]
    (pref,) = out.detail["preferences"]
    assert (pref["source"], pref["chosen"], pref["rejected"]) == ("revision", BETTER, DRAFT)
    assert pref["prompt"][0] == {"role": "system", "content": "You are writer."}
    assert pref["principles"] == ["correct"]


def test_critique_stops_at_its_rounds_and_a_lone_author_critiques_itself() -> None:
    view = SocietyView([member("solo")], CritiqueParams(rounds=1))
    rounds, out = run(critique(TASK, view), [
        ("draft", each(DRAFT)),
        ("critique 1", each("Principle: concise. Cut the first sentence.")),
        ("revise 1", each(BETTER)),
    ])
    assert [a.agent for r in rounds for a in r.asks] == ["solo", "solo", "solo"]
    assert out.text == BETTER and out.detail["stopped"] == "rounds"


def test_an_off_format_critic_asks_for_nothing() -> None:
    view = SocietyView([member("writer", "author"), member("rambler", "critic"),
                        member("sharp", "critic")], CritiqueParams(rounds=2))
    rounds, out = run(critique(TASK, view), [
        ("draft", each(DRAFT)),
        ("critique 1", each("Principle: The sky is blue because of the ocean.",
                            "Principle: **Honest** — it should say it is unsure.")),
        ("revise 1", each(BETTER)),
        ("critique 2", each("What a lovely answer!", "No change.")),
    ])
    # only the critique that named a principle reached the author
    fix = rounds[2].asks[0].messages[-1].content
    assert "Honest" not in fix and "honest:" in fix and "ocean" not in fix
    assert [c["verdict"] for c in out.detail["critiques"]] == [
        "off-format", "change", "off-format", "no change"]
    assert out.detail["stopped"] == "nothing to act on" and out.text == BETTER


def test_a_failed_critic_a_failed_or_truncated_revision_keep_the_answer() -> None:
    # (a round whose every call fails ends the whole run as an error, in the runner;
    # here one of two critics fails, and the revision fails, is cut off or is the same)
    view = SocietyView([member("writer", "author"), member("c1", "critic"),
                        member("c2", "critic")], CritiqueParams(rounds=2))
    failed = ChatReply("", finish_reason="error", error="boom")
    _, out = run(critique(TASK, view), [("draft", each(DRAFT)),
                                        ("critique 1", each(failed, "No change."))])
    assert out.text == DRAFT and out.detail["critiques"][0]["verdict"] == "failed"
    asked = ("critique 1", each("Principle: correct\nWrong.", "No change."))
    for revision, why in ((failed, "revision failed"),
                          (ChatReply(BETTER, finish_reason="length"), "revision truncated"),
                          (f"  {DRAFT}\n", "unchanged")):
        _, out = run(critique(TASK, view), [("draft", each(DRAFT)), asked,
                                            ("revise 1", each(revision))])
        assert out.text == DRAFT and out.detail["stopped"] == why
        assert out.detail["preferences"] == [] and out.detail["revisions"] == 0


def test_read_critique_names_only_known_principles() -> None:
    c = default_constitution()

    def verdict(text: str) -> tuple[str | None, str]:
        got = read_critique("c", Turn(None, ChatReply(text)), c)  # type: ignore[arg-type]
        return got.principle, got.verdict

    assert verdict("Principle: complete\nIt skips the second part.") == ("complete", "change")
    assert verdict("principle: `concise`.") == ("concise", "change")
    assert verdict("No change.") == (None, "no change")
    assert verdict("Principle: none. No change.") == (None, "no change")
    assert verdict("I like it.") == (None, "off-format")
    # what follows "No change." says why; a principle mentioned in passing is no request
    assert verdict("No change. The answer meets every principle correctly.") == (
        None, "no change")
    assert verdict("No change. (Principle: correct is satisfied.)") == (None, "no change")
    assert verdict("It is fine; the principle correct holds.") == (None, "off-format")
    # a name is matched as a whole word: "Correctness" is not "correct"
    assert verdict("Principle: Correctness - check the facts.") == (None, "off-format")
    assert verdict("- **Principle: Honest** - say it is a guess.") == ("honest", "change")


# == constitution files =====================================================================

def test_principles_have_distinct_names_found_as_whole_words() -> None:
    rules = Constitution.model_validate({"principles": [
        {"name": "clear", "text": "a"}, {"name": "clear and short", "text": "b"}]})
    assert rules.find(" **Clear and short**: too long") is rules.principles[1]
    assert rules.find("clearly fine") is None
    with pytest.raises(ValueError, match="share a name"):
        Constitution.model_validate({"principles": [{"name": "x", "text": "a"},
                                                    {"name": "X", "text": "b"}]})


def test_constitution_files_toml_and_text(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[[principles]]\nname = "brief"\ntext = "Two sentences at most."\n')
    assert [p.name for p in load_constitution(toml).principles] == ["brief"]
    text = tmp_path / "c.txt"
    text.write_text("# mine\nbrief: Two sentences at most.\nBe kind.\n")
    got = load_constitution(text)
    assert [(p.name, p.text) for p in got.principles] == [
        ("brief", "Two sentences at most."), ("principle 2", "Be kind.")]
    assert "- brief: Two sentences at most." in got.text()


@pytest.mark.parametrize(("content", "message"), [
    ('principles = []\n', r"c\.toml: field 'principles': List should have at least 1 item"),
    ('rules = ["x"]\n[[principles]]\nname = "a"\ntext = "b"\n',
     r"c\.toml: field 'rules': Extra inputs are not permitted; expected 'principles'"),
    ('[[principles]]\nname = "a"\ntext = "b"\nweight = 2\n',
     r"c\.toml: field 'principles\.0\.weight': Extra inputs"),
    ('[[principles]]\nname = "a"\ntext = ""\n', r"field 'principles\.0\.text'"),
    ('[[principles]]\nname = "a\nb"', r"c\.toml: not valid TOML"),
])
def test_a_bad_constitution_file_is_one_line_naming_file_and_field(
        tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(MinskyError, match=message) as err:
        load_constitution(path)
    assert "\n" not in str(err.value)


def test_an_empty_text_constitution_and_a_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "c.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(MinskyError, match=r"c\.txt: field 'principles'"):
        load_constitution(empty)
    with pytest.raises(MinskyError, match=r"constitution file .*nope\.toml: cannot read it"):
        load_constitution(tmp_path / "nope.toml")


def test_a_constitution_path_is_relative_to_its_society_file(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from minsky.society import load

    (tmp_path / "rules.txt").write_text("brief: Two sentences at most.\n")
    (tmp_path / "s.toml").write_text('name = "s"\norganisation = "critique"\n'
                                     'model = "echo:"\n[params]\nconstitution = "rules.txt"\n'
                                     '[[agents]]\nname = "writer"\n')
    monkeypatch.chdir(Path("/"))
    society = load(str(tmp_path / "s.toml"))
    assert [p.name for p in society.params.constitution.principles] == ["brief"]


def test_a_society_file_names_a_bad_constitution(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("principles = []\n")
    society = tmp_path / "s.toml"
    society.write_text(f'name = "s"\norganisation = "critique"\nmodel = "echo:"\n'
                       f'[params]\nconstitution = "{bad}"\n'
                       '[[agents]]\nname = "writer"\n')
    result = CliRunner().invoke(main, ["ask", "--society", str(society), "--no-log", Q])
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "rules.toml" in line and "field 'principles'" in line
    assert line.startswith(f"error: {society}: field 'params': constitution file")


# == pairwise choice ========================================================================

def letters(**p: float) -> ChatReply:
    """A judge's one-letter reply with its log-probabilities."""
    top = {f" {k}": math.log(v) for k, v in p.items()}
    return ChatReply(max(p, key=lambda k: p[k]), top_logprobs=[top])


def test_combine_counts_a_flip_as_a_tie() -> None:
    assert combine("A", "B") == (1.0, False)
    assert combine("B", "A") == (0.0, False)
    assert combine("A", "A") == (0.5, True)
    assert combine("C", "B") == (0.5, False)
    assert combine(None, "B") == (0.5, False)


def test_round_robin_judges_every_pair_in_both_orders_in_one_round() -> None:
    judge = member("judge", "judge")
    drafts_ = ["d0", "d1", "d2"]
    # d2 is better than both, in both orders; d0 v d1 flips with the order (a tie)
    verdicts = [letters(A=0.6, B=0.4), letters(A=0.7, B=0.3),   # d0 v d1: A, A → tie
                letters(A=0.2, B=0.8), letters(A=0.9, B=0.1),   # d0 v d2: d2 both times
                letters(A=0.3, B=0.7), letters(A=0.6, B=0.4)]   # d1 v d2: d2 both times
    answer, rounds = scripted([("judge", lambda rnd: verdicts)])
    gen = tournament(Q, drafts_, judge, "round_robin")
    _, (best, games) = drive(gen, answer)  # type: ignore[arg-type]
    assert best == 2
    (rnd,) = rounds
    shown = [a.messages[-1].content for a in rnd.asks]
    # each pair in both orders: the first draft as A, then as B
    assert shown[0].index("d0") < shown[0].index("d1")
    assert shown[1].index("d1") < shown[1].index("d0")
    assert all(a.purpose == "judge" and a.agent == "judge" for a in rnd.asks)
    assert [(g.a, g.b, g.score, g.flipped) for g in games] == [
        (0, 1, 0.5, True), (0, 2, 0.0, False), (1, 2, 0.0, False)]


def test_a_tie_goes_to_the_margin_then_to_the_earlier_draft() -> None:
    judge = member("judge")
    # both orders say "A" (a flip, so a tie); the margin favours the second draft
    answer, _ = scripted([("judge", each(letters(A=0.55, B=0.45), letters(A=0.9, B=0.1)))])
    _, (best, games) = drive(tournament(Q, ["d0", "d1"], judge), answer)  # type: ignore[arg-type]
    assert games[0].score == 0.5 and games[0].margin < 0 and best == 1
    # no log-probabilities and a tie both ways: the earlier (greedy) draft
    answer, _ = scripted([("judge", each("C", "C"))])
    _, (best, games) = drive(tournament(Q, ["d0", "d1"], judge), answer)  # type: ignore[arg-type]
    assert (best, games[0].score, games[0].flipped) == (0, 0.5, False)


def test_knockout_meets_the_winner_so_far_one_round_a_match() -> None:
    judge = member("judge")
    answer, rounds = scripted([
        ("judge 1", each("B", "A")),   # d1 beats d0 in both orders
        ("judge 2", each("A", "B")),   # d1 beats d2 in both orders
    ])
    _, (best, games) = drive(tournament(Q, ["d0", "d1", "d2"], judge, "knockout"),
                             answer)  # type: ignore[arg-type]
    assert best == 1 and [(g.a, g.b) for g in games] == [(0, 1), (1, 2)]
    assert [len(r.asks) for r in rounds] == [2, 2]


def test_drafts_samples_each_draft_with_its_own_seed_and_keeps_decisive_pairs() -> None:
    view = SocietyView([member("writer"), member("judge", "judge")], DraftsParams(k=2))
    rounds, out = run(drafts(TASK, view), [
        ("draft", each(DRAFT, BETTER)),
        ("judge", each("B", "A")),  # the second draft wins in both orders
    ])
    first, second = rounds[0].asks
    assert first.options is None  # the greedy draft: the member's own options
    assert second.options is not None
    assert (second.options.temperature, second.options.seed) == (0.8, 8)
    assert out.text == BETTER and out.detail["chosen"] == 2
    (pref,) = out.detail["preferences"]
    assert (pref["source"], pref["chosen"], pref["rejected"]) == ("judgement", BETTER, DRAFT)


def test_chosen_and_games_count_every_draft_and_a_cut_draft_waits() -> None:
    view = SocietyView([member("writer")], DraftsParams(k=3))
    failed = ChatReply("", finish_reason="error", error="boom")
    rounds, out = run(drafts(TASK, view), [
        ("draft", each(failed, DRAFT, BETTER)),
        ("judge", each("B", "A")),  # the third draft beats the second in both orders
    ])
    assert out.text == BETTER and out.detail["chosen"] == 3
    assert [(g["a"], g["b"]) for g in out.detail["games"]] == [(1, 2)]
    # a truncated draft is not judged while a whole one is there
    cut = ChatReply(BETTER, finish_reason="length")
    rounds, out = run(drafts(TASK, SocietyView([member("writer")], DraftsParams(k=2))),
                      [("draft", each(cut, DRAFT))])
    assert len(rounds) == 1 and out.text == DRAFT and out.detail["chosen"] == 2


def test_the_judge_reads_log_probabilities_only_where_letters_hold_the_position() -> None:
    judge = member("judge")
    noisy = ChatReply("B", top_logprobs=[{" **": math.log(0.9), " A": math.log(0.06),
                                          " B": math.log(0.04)}])
    answer, _ = scripted([("judge", each(noisy, noisy))])
    _, (best, games) = drive(tournament(Q, ["d0", "d1"], judge), answer)  # type: ignore[arg-type]
    # the letter written (B both times: a flip), not the 6 % "A" at the first position
    assert (games[0].ab, games[0].ba, games[0].margin) == ("B", "B", 0.0) and best == 0


def test_a_consensus_of_judges_alone_is_one_clear_error() -> None:
    view = SocietyView([member("judge", "judge")], ConsensusParams())
    with pytest.raises(MinskyError, match="needs a reasoner, programmer or expert"):
        next(consensus(TASK, view))


def test_a_lettered_list_inside_a_judged_answer_is_not_the_verdicts() -> None:
    from minsky.organisations.consensus import _options
    from minsky.organisations.judging import PAIR_TEMPLATE, judge_question

    question = judge_question(PAIR_TEMPLATE, "Pick a pet.", "A) cat\nB) dog\nC) car",
                              "A dog.", None)
    stem, options = _options(question)
    assert options == ["Assistant A's answer", "Assistant B's answer", "A tie"]
    assert "A) cat" in stem and "A dog." in stem


def test_a_tied_pair_is_no_preference_and_failed_drafts_are_not_judged() -> None:
    view = SocietyView([member("writer")], DraftsParams(k=3))
    failed = ChatReply("", finish_reason="error", error="boom")
    rounds, out = run(drafts(TASK, view), [
        ("draft", each(DRAFT, failed, BETTER)),
        ("judge", each("A", "A")),  # flips: a tie, no pair
    ])
    assert len(rounds[1].asks) == 2  # the two drafts that did not fail: one pair
    assert out.detail["preferences"] == [] and out.text == DRAFT


# == the default society's text path ========================================================

def test_consensus_text_path_drafts_judges_and_critiques() -> None:
    members = [member("coder", "programmer"), member("reasoner", "reasoner"),
               member("judge", "judge")]
    view = SocietyView(members, ConsensusParams(text="both", drafts=2, revisions=1))
    rounds, out = run(consensus(TASK, view), [
        ("draft", each(DRAFT, BETTER)),
        ("judge", each("B", "A")),
        ("critique 1", each("No change.")),
    ])
    assert [a.agent for a in rounds[0].asks] == ["reasoner", "reasoner"]
    assert {a.agent for a in rounds[1].asks} == {"judge"}
    assert rounds[2].asks[0].agent == "reasoner"  # no critic group: it critiques itself
    assert out.text == BETTER and out.detail["path"] == "both"
    assert out.detail["stopped"] == "no change"


def test_consensus_number_questions_keep_their_path() -> None:
    members = [member("reasoner", "reasoner"), member("judge", "judge")]
    view = SocietyView(members, ConsensusParams(text="both"))
    rounds, out = run(consensus(Task("What is 6*7?", "number"), view),
                      [("answer 1", each("The answer is 42."))])
    assert [a.agent for a in rounds[0].asks] == ["reasoner"]  # the judge does not vote
    assert out.answer == "42" and "path" not in out.detail


# == through the runner, the log and the CLI ================================================

def _judge_or_write(request: ChatRequest) -> str:
    text = request.messages[-1].content
    if "Which answer is better?" in text:
        return "A" if "[The Start of Assistant A's Answer]\nGood" in text else "B"
    if "check it against each principle" in text:
        return "Principle: concise\nShorter, please." if "Good long" in text else "No change."
    if request.messages[-1].content.startswith("A reviewer checked"):
        return "Good short."
    return "Good long." if request.options.temperature == 0 else "Poor."


def _society(tmp_path: Path, text: str, budget: str = "") -> Society:
    from minsky.society import load

    path = tmp_path / f"{text}.toml"
    path.write_text(f'name = "t-{text}"\norganisation = "consensus"\nmodel = "fake:a"\n'
                    f'{budget}\n[params]\ntext = "{text}"\ndrafts = 2\nrevisions = 2\n'
                    '[[agents]]\nname = "reasoner"\ngroup = "reasoner"\n'
                    'options = { temperature = 0.0, max_tokens = 64 }\n')
    return load(str(path))


async def test_the_runner_logs_each_round_and_prefs_come_back_as_dpo_rows(
        tmp_path: Path) -> None:
    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(_judge_or_write)}), log)
    result = await runner.run(_society(tmp_path, "both"), Q)
    assert result.status == "ok" and result.outcome.text == "Good short."
    run = log.get_run(result.run_id)
    assert [r["label"] for r in run["rounds"]] == [
        "draft", "judge", "critique 1", "revise 1", "critique 2"]
    assert [c["purpose"] for c in run["calls"]] == [
        "answer", "draft", "judge", "judge", "critique", "revise", "critique"]
    rows = preference_rows(log)
    assert [(r["source"], r["chosen"][0]["content"], r["rejected"][0]["content"])
            for r in rows] == [("judgement", "Good long.", "Poor."),
                               ("revision", "Good short.", "Good long.")]
    assert all(r["run_id"] == result.run_id and r["prompt"][-1]["role"] == "user"
               for r in rows)
    assert preference_rows(log, sources=["revision"])[0]["source"] == "revision"
    log.close()


async def test_a_budget_stops_the_critique_loop_and_the_run_never_reads_ok(
        tmp_path: Path) -> None:
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(_judge_or_write)}))
    society = _society(tmp_path, "critique", "[budget]\nmax_rounds = 3\n")
    result = await runner.run(society, Q)
    assert result.status == "max_rounds"
    assert [r.label for r in result.rounds] == ["draft", "critique 1", "revise 1"]
    assert result.answer is None


def test_ask_runs_the_default_society_and_shows_its_path(tmp_path: Path) -> None:
    log = tmp_path / "runs.db"
    result = CliRunner().invoke(main, ["ask", "--model", "echo:", "--log", str(log), Q])
    assert result.exit_code == 0, result.output
    assert "path critique → 1 critique(s)" in result.output
    assert "round 2: critique 1 (1 asks)" in result.output
    got = json.loads(CliRunner().invoke(main, ["logs", "list", "--log", str(log),
                                               "--json"]).output)
    (run,) = got
    shown = CliRunner().invoke(main, ["logs", "show", "--log", str(log), run["run_id"]])
    assert "path critique" in shown.output and "critique" in shown.output


def test_star_prefs_writes_dpo_rows(tmp_path: Path) -> None:
    import asyncio

    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(_judge_or_write)}), log)
    asyncio.run(runner.run(_society(tmp_path, "drafts"), Q))
    log.close()
    out = tmp_path / "prefs.jsonl"
    result = CliRunner().invoke(main, ["star", "prefs", "--log", str(tmp_path / "runs.db"),
                                       "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["judgement"] == 1
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(row) >= {"prompt", "chosen", "rejected", "source", "run_id"}
    assert row["chosen"] == [{"role": "assistant", "content": "Good long."}]


async def test_the_viewer_shows_the_text_path(tmp_path: Path) -> None:
    from minsky.view.mindstorm import build

    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:a": FunctionBackend(_judge_or_write)}), log)
    result = await runner.run(_society(tmp_path, "critique"), Q)
    view = build(log, result.run_id)
    assert view["path"].startswith("path critique")
    assert "critique(s) citing concise, 1 revision(s)" in view["path"]
    assert [r["label"] for r in view["rounds"]] == [
        "draft", "critique 1", "revise 1", "critique 2"]
    log.close()

