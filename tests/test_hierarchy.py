"""Societies as members of societies: nested runs, their log, usage, concurrency, depth."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from minsky.backends.base import Backend
from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.messages import ChatRequest
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import MAX_DEPTH, load

Q = "Plan a picnic in the park."


def runner(backends: dict[str, Backend], log: RunLog | None = None) -> Runner:
    return Runner(Backends(overrides=backends), log)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def team_toml(name: str, word: str, model: str = "fake:x") -> str:
    """A two-round sub-society (a mixture: one proposer layer, one aggregator)."""
    return f"""
name = "{name}"
organisation = "mixture"
model = "{model}"
answer = "text"

[params]
layers = 1

[[agents]]
name = "proposer"
group = "proposer"
role = "You propose for team {word}."

[[agents]]
name = "aggregator"
group = "aggregator"
role = "You aggregate for team {word}."
"""


def contest_toml(proposers: list[tuple[str, str]], critic_model: str = "fake:c",
                 budget: str = "") -> str:
    text = f'name = "parent"\norganisation = "contest"\nmodel = "{critic_model}"\n{budget}\n'
    for name, ref in proposers:
        text += f'\n[[agents]]\nname = "{name}"\ngroup = "proposer"\nsociety = "{ref}"\n'
    text += '\n[[agents]]\nname = "critic"\ngroup = "critic"\nrole = "You are a critic."\n'
    return text


def team_reply(request: ChatRequest) -> str:
    system = request.messages[0].content
    team = "alpha" if "team alpha" in system else "beta"
    if "aggregate" in system:
        return f"{team.title()} final plan: sandwiches and a blanket."
    return f"{team} idea"


def vote_b(request: ChatRequest) -> str:
    return "B"


@pytest.fixture
def parent_file(tmp_path: Path) -> Path:
    write(tmp_path / "subs" / "alpha.toml", team_toml("team-alpha", "alpha"))
    write(tmp_path / "subs" / "beta.toml", team_toml("team-beta", "beta"))
    return write(
        tmp_path / "parent.toml",
        contest_toml([("team-a", "subs/alpha.toml"), ("team-b", "./subs/beta.toml")]),
    )


# -- loading ------------------------------------------------------------------------------


def test_sub_society_paths_are_relative_to_the_parent_file(
    parent_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    society = load(str(parent_file))
    members = {a.name: a for a in society.agents}
    assert members["team-a"].society is not None
    assert members["team-a"].society.name == "team-alpha"
    assert members["team-a"].model == "society:team-alpha"
    assert members["team-b"].society is not None
    assert members["team-b"].society.name == "team-beta"
    assert members["critic"].society is None
    assert members["critic"].model == "fake:c"


def test_model_override_reaches_sub_societies(parent_file: Path) -> None:
    society = load(str(parent_file), model="fake:o")
    sub = next(a for a in society.agents if a.name == "team-a").society
    assert sub is not None
    assert {a.model for a in sub.agents} == {"fake:o"}
    assert next(a for a in society.agents if a.name == "critic").model == "fake:o"


def test_a_society_that_includes_itself_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "loop.toml", contest_toml([("me", "loop.toml")]))
    with pytest.raises(MinskyError) as err:
        load(str(path))
    message = str(err.value)
    assert "loop.toml" in message
    assert "field 'agents.0.society'" in message
    assert f"deeper than {MAX_DEPTH} levels" in message


def test_two_files_that_include_each_other_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "ping.toml", contest_toml([("pong", "pong.toml")]))
    write(tmp_path / "pong.toml", contest_toml([("ping", "ping.toml")]))
    with pytest.raises(MinskyError, match=r"field 'agents\.0\.society'"):
        load(str(tmp_path / "ping.toml"))


def _chain(tmp_path: Path, levels: int) -> Path:
    """level0 → level1 → … → level{levels}, the last a plain mixture."""
    write(tmp_path / f"level{levels}.toml", team_toml(f"level{levels}", "alpha"))
    for k in range(levels - 1, -1, -1):
        write(tmp_path / f"level{k}.toml", contest_toml([("sub", f"level{k + 1}.toml")]))
    return tmp_path / "level0.toml"


def test_nesting_up_to_max_depth_loads(tmp_path: Path) -> None:
    society = load(str(_chain(tmp_path, MAX_DEPTH)))
    depth = 0
    while (sub := society.agents[0].society) is not None:
        society, depth = sub, depth + 1
    assert depth == MAX_DEPTH


def test_nesting_deeper_than_max_depth_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MinskyError, match=f"level{MAX_DEPTH}.toml: field 'agents.0.society'"):
        load(str(_chain(tmp_path, MAX_DEPTH + 1)))


def test_missing_sub_society_file_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", contest_toml([("x", "nope.toml")]))
    with pytest.raises(MinskyError, match="nope.toml"):
        load(str(path))


def test_builtin_text_to_image_has_artist_sub_societies_and_critics() -> None:
    society = load("text-to-image")
    assert society.organisation.name == "contest"
    proposers = [a for a in society.agents if a.group == "proposer"]
    critics = [a for a in society.agents if a.group == "critic"]
    assert len(proposers) == 3
    assert all(a.society is not None for a in proposers)
    assert {a.society.name for a in proposers if a.society} == {
        "artist-impressionist", "artist-photographer", "artist-surrealist",
    }
    assert all(a.society.organisation.name == "monarchy" for a in proposers if a.society)
    assert [a.model for a in proposers] == [f"society:{a.society.name}" for a in proposers
                                            if a.society]
    assert len(critics) == 4
    assert all(a.society is None for a in critics)


# -- running ------------------------------------------------------------------------------


async def test_sub_societies_run_as_child_runs(parent_file: Path, log: RunLog) -> None:
    team = FunctionBackend(team_reply)
    critics = FunctionBackend(vote_b)
    result = await runner({"fake:x": team, "fake:c": critics}, log).run(
        load(str(parent_file)), Q
    )
    assert result.status == "ok"
    # both teams proposed their aggregator's whole reply; the critic voted B
    assert result.answer == "Beta final plan: sandwiches and a blanket."
    assert [r.label for r in result.rounds] == ["propose", "critique"]

    parent = log.get_run(result.run_id)
    assert parent["parent_id"] is None
    children = parent["children"]
    assert sorted(c["society"] for c in children) == ["team-alpha", "team-beta"]
    assert all(c["status"] == "ok" for c in children)
    by_society = {c["society"]: c for c in children}

    calls = {c["agent"]: c for c in parent["calls"]}
    assert set(calls) == {"team-a", "team-b", "critic"}
    for agent, sub_name in (("team-a", "team-alpha"), ("team-b", "team-beta")):
        child = log.get_run(by_society[sub_name]["id"])
        assert child["parent_id"] == result.run_id
        assert child["question"] == Q
        assert [r["label"] for r in child["rounds"]] == ["layer 1", "aggregate"]
        # the proposer's reply in the parent's log is the sub-society's outcome text
        assert child["outcome"]["text"] == calls[agent]["text"]
        assert calls[agent]["text"] == (
            f"{sub_name[5:].title()} final plan: sandwiches and a blanket."
        )
        assert calls[agent]["backend"] == f"society:{sub_name} run {child['id']}"
        # its usage is the child's usage
        assert calls[agent]["prompt_tokens"] == child["prompt_tokens"]
        assert calls[agent]["completion_tokens"] == child["completion_tokens"]
        assert child["prompt_tokens"] > 0

    # usage of the sub-runs is part of the parent's usage
    child_rows = [log.get_run(c["id"]) for c in children]
    critic = calls["critic"]
    assert result.usage.prompt_tokens == (
        sum(c["prompt_tokens"] for c in child_rows) + critic["prompt_tokens"]
    )
    assert result.usage.completion_tokens == (
        sum(c["completion_tokens"] for c in child_rows) + critic["completion_tokens"]
    )
    assert parent["prompt_tokens"] == result.usage.prompt_tokens
    # the sub-societies' members called the team backend, the critic its own
    assert len(team.requests) == 4
    assert len(critics.requests) == 1
    assert "A) Alpha final plan" in critics.requests[0].messages[-1].content


async def test_the_sub_society_is_asked_the_parents_question(
    parent_file: Path, log: RunLog
) -> None:
    team = FunctionBackend(team_reply)
    await runner({"fake:x": team, "fake:c": FunctionBackend(vote_b)}, log).run(
        load(str(parent_file)), Q
    )
    first_layer = [r for r in team.requests if "propose for" in r.messages[0].content]
    assert len(first_layer) == 2
    assert all(r.messages[-1].content.startswith(Q) for r in first_layer)


async def test_runs_without_a_log_too(parent_file: Path) -> None:
    result = await runner(
        {"fake:x": FunctionBackend(team_reply), "fake:c": FunctionBackend(vote_b)}
    ).run(load(str(parent_file)), Q)
    assert result.status == "ok"
    assert result.answer == "Beta final plan: sandwiches and a blanket."


async def test_sub_societies_of_one_round_run_concurrently(tmp_path: Path) -> None:
    write(tmp_path / "alpha.toml", team_toml("team-alpha", "alpha", model="fake:slow"))
    write(tmp_path / "beta.toml", team_toml("team-beta", "beta", model="fake:slow"))
    one = load(str(write(tmp_path / "one.toml", contest_toml([("a", "alpha.toml")]))))
    two = load(str(write(
        tmp_path / "two.toml", contest_toml([("a", "alpha.toml"), ("b", "beta.toml")])
    )))

    async def timed(society) -> float:  # type: ignore[no-untyped-def]
        slow = FunctionBackend(team_reply, delay_s=0.25)
        r = runner({"fake:slow": slow, "fake:c": FunctionBackend(vote_b)})
        start = time.perf_counter()
        result = await r.run(society, Q)
        assert result.status == "ok"
        return time.perf_counter() - start

    t_one = await timed(one)
    t_two = await timed(two)
    assert t_one >= 0.5  # two rounds of the sub-society, 0.25 s each
    assert t_two < 1.6 * t_one, f"sub-societies ran one after another ({t_two:.2f} s)"


async def test_a_failed_sub_society_is_an_error_reply(tmp_path: Path, log: RunLog) -> None:
    # the sub-society runs out of rounds: it has no outcome text, so its reply is an error
    write(tmp_path / "alpha.toml", team_toml("team-alpha", "alpha").replace(
        'answer = "text"', 'answer = "text"\n[budget]\nmax_rounds = 1'))
    write(tmp_path / "beta.toml", team_toml("team-beta", "beta"))
    parent = write(tmp_path / "p.toml",
                   contest_toml([("a", "alpha.toml"), ("b", "beta.toml")]))
    result = await runner(
        {"fake:x": FunctionBackend(team_reply), "fake:c": FunctionBackend(vote_b)}, log
    ).run(load(str(parent)), Q)
    assert result.status == "ok"
    first = result.rounds[0].turns
    assert first[0]["finish_reason"] == "error"
    assert "max_rounds" in first[0]["error"]
    assert first[1]["finish_reason"] == "stop"
    # only one proposal is left: no critique, beta wins
    assert result.answer == "Beta final plan: sandwiches and a blanket."
    children = {c["society"]: c["status"] for c in log.get_run(result.run_id)["children"]}
    assert children == {"team-alpha": "max_rounds", "team-beta": "ok"}


async def test_parent_timeout_interrupts_the_children(tmp_path: Path, log: RunLog) -> None:
    write(tmp_path / "alpha.toml", team_toml("team-alpha", "alpha", model="fake:slow"))
    parent = write(tmp_path / "p.toml", contest_toml(
        [("a", "alpha.toml"), ("b", "alpha.toml")], budget="\n[budget]\ntimeout_s = 0.3\n"))
    start = time.perf_counter()
    result = await runner(
        {"fake:slow": FunctionBackend(team_reply, delay_s=5), "fake:c": FunctionBackend(vote_b)},
        log,
    ).run(load(str(parent)), Q)
    assert time.perf_counter() - start < 2
    assert result.status == "timeout"
    children = log.get_run(result.run_id)["children"]
    assert len(children) == 2
    # each stopped at the deadline it shares with its parent, and says so
    assert {c["status"] for c in children} == {"timeout"}


# -- resume and budgets across levels --------------------------------------------------------


def _slow_aggregator(path: Path, name: str, word: str) -> Path:
    """A team whose proposer is fast (fake:x) and whose aggregator is slow (fake:slow)."""
    text = team_toml(name, word).replace(
        '[[agents]]\nname = "aggregator"', '[[agents]]\nname = "aggregator"\nmodel = "fake:slow"'
    )
    return write(path, text)


async def _interrupted_parent(tmp_path: Path, log: RunLog) -> tuple[Path, str]:
    """A parent whose alpha team finished and whose beta team was cut off by the timeout."""
    write(tmp_path / "alpha.toml", team_toml("team-alpha", "alpha"))
    _slow_aggregator(tmp_path / "beta.toml", "team-beta", "beta")
    parent = write(tmp_path / "p.toml", contest_toml(
        [("a", "alpha.toml"), ("b", "beta.toml")], budget="\n[budget]\ntimeout_s = 0.4\n"))
    first = await runner({
        "fake:x": FunctionBackend(team_reply),
        "fake:slow": FunctionBackend(team_reply, delay_s=5),
        "fake:c": FunctionBackend(vote_b),
    }, log).run(load(str(parent)), Q)
    assert first.status == "timeout"
    children = {c["society"]: c["status"] for c in log.get_run(first.run_id)["children"]}
    assert children == {"team-alpha": "ok", "team-beta": "timeout"}
    return parent, first.run_id


async def test_resume_replays_a_finished_sub_society(tmp_path: Path, log: RunLog) -> None:
    parent, run_id = await _interrupted_parent(tmp_path, log)
    team = FunctionBackend(team_reply)
    resumed = await runner({
        "fake:x": team, "fake:slow": FunctionBackend(team_reply),
        "fake:c": FunctionBackend(vote_b),
    }, log).run(load(str(parent)), Q, resume=run_id)
    assert resumed.status == "ok"
    assert resumed.run_id == run_id
    assert resumed.answer == "Beta final plan: sandwiches and a blanket."
    # alpha's reply came from the log: its team was not asked again
    assert not any("team alpha" in r.messages[0].content for r in team.requests)
    calls = {c["agent"]: c for c in log.get_run(run_id)["calls"]}
    assert calls["a"]["replayed"] == 1
    assert calls["b"]["replayed"] == 0


async def test_resume_replays_calls_of_an_interrupted_sub_society(
    tmp_path: Path, log: RunLog
) -> None:
    parent, run_id = await _interrupted_parent(tmp_path, log)
    team = FunctionBackend(team_reply)
    resumed = await runner({
        "fake:x": team, "fake:slow": FunctionBackend(team_reply),
        "fake:c": FunctionBackend(vote_b),
    }, log).run(load(str(parent)), Q, resume=run_id)
    assert resumed.status == "ok"
    # beta's proposer had answered (and was logged) before the timeout
    assert team.requests == []


async def test_sub_societies_stay_within_the_parents_token_budget(tmp_path: Path) -> None:
    write(tmp_path / "alpha.toml", team_toml("team-alpha", "alpha"))
    write(tmp_path / "beta.toml", team_toml("team-beta", "beta"))
    parent = write(tmp_path / "p.toml", contest_toml(
        [("a", "alpha.toml"), ("b", "beta.toml")], budget="\n[budget]\nmax_tokens = 60\n"))

    def verbose(request: ChatRequest) -> str:
        return "word " * 100 + team_reply(request)

    result = await runner(
        {"fake:x": FunctionBackend(verbose), "fake:c": FunctionBackend(vote_b)}
    ).run(load(str(parent)), Q)
    # both artists ran out of their share of the budget before saying anything
    assert result.status == "error"
    assert "max_tokens" in (result.error or "")
    # ordinary members are capped so that completions never exceed max_tokens in total
    assert result.usage.completion_tokens <= 60


async def test_ordinary_members_stay_within_the_token_budget(tmp_path: Path) -> None:
    # the invariant the test above expects of sub-societies
    parent = write(tmp_path / "p.toml", team_toml("flat", "alpha").replace(
        'answer = "text"', 'answer = "text"\n[budget]\nmax_tokens = 60'))

    def verbose(request: ChatRequest) -> str:
        return "word " * 100 + team_reply(request)

    result = await runner({"fake:x": FunctionBackend(verbose)}).run(load(str(parent)), Q)
    assert result.status == "max_tokens"
    assert result.usage.completion_tokens <= 60


# -- sub-societies in organisations that continue a conversation ----------------------------


async def test_sub_society_debaters_first_see_the_task(tmp_path: Path, log: RunLog) -> None:
    write(tmp_path / "team.toml", team_toml("team", "alpha").replace('answer = "text"\n', ""))
    parent = write(tmp_path / "debate.toml", (
        'name = "deb"\norganisation = "debate"\n[params]\nrounds = 2\n'
        '[[agents]]\nname = "team"\ngroup = "debater"\ncount = 2\nsociety = "team.toml"\n'
    ))
    result = await runner({"fake:x": FunctionBackend(lambda r: "The answer is 4.")}, log).run(
        load(str(parent)), "What is 2+2?"
    )
    assert result.status == "ok"
    assert result.answer == "4"
    children = log.get_run(result.run_id)["children"]
    assert len(children) == 4  # two debaters, two rounds
    questions = [log.get_run(c["id"])["question"] for c in children]
    # round 2 asks too keep the task in front of what is asked now
    assert sum(q.startswith("What is 2+2?") for q in questions) == 4


async def test_sub_society_debaters_still_see_the_task_in_round_two(
    tmp_path: Path, log: RunLog
) -> None:
    write(tmp_path / "team.toml", team_toml("team", "alpha").replace('answer = "text"\n', ""))
    parent = write(tmp_path / "debate.toml", (
        'name = "deb"\norganisation = "debate"\n[params]\nrounds = 2\n'
        '[[agents]]\nname = "team"\ngroup = "debater"\ncount = 2\nsociety = "team.toml"\n'
    ))
    result = await runner({"fake:x": FunctionBackend(lambda r: "The answer is 4.")}, log).run(
        load(str(parent)), "What is 2+2?"
    )
    children = log.get_run(result.run_id)["children"]
    questions = [log.get_run(c["id"])["question"] for c in children]
    assert all("What is 2+2?" in q for q in questions), questions
