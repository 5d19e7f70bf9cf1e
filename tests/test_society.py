"""Society files: built-ins, expansion of copies, model resolution and one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from minsky.errors import MinskyError
from minsky.messages import Options
from minsky.organisations.vote import SINGLE, VOTE, VoteParams
from minsky.society import DEFAULT_ROLE, Society, builtin_names, from_dict, load

BUILTINS = {"single": 1, "vote3": 3, "vote5": 5, "vote9": 9}

GOOD_FILE = """
name = "mine"
organisation = "vote"
model = "fake:society"

[[agents]]
name = "solver"
role = "You solve things."
count = 2
options = { temperature = 0.5, seed = 3 }
"""


def write(tmp_path: Path, text: str, name: str = "society.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- built-ins -----------------------------------------------------------------------------


def test_builtin_names() -> None:
    names = builtin_names()
    assert set(BUILTINS) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize(("name", "size"), sorted(BUILTINS.items()))
def test_load_builtin_by_name(name: str, size: int) -> None:
    society = load(name)
    assert isinstance(society, Society)
    assert society.name == name
    assert society.source == f"builtin:{name}"
    assert len(society.agents) == size
    assert society.config.description
    budget = society.config.budget
    assert budget.max_rounds >= 2  # room for the repair round
    assert budget.max_tokens > 0 and budget.timeout_s > 0
    assert isinstance(society.params, VoteParams)
    assert {a.model for a in society.agents} == {"qwen0.5b"}


def test_single_builtin_is_one_greedy_solver() -> None:
    society = load("single")
    assert society.organisation is SINGLE
    (agent,) = society.agents
    assert agent.name == "solver"
    assert agent.options.temperature == 0.0
    assert agent.options.seed is None


@pytest.mark.parametrize("name", ["vote3", "vote5", "vote9"])
def test_vote_builtins_are_sampled_copies(name: str) -> None:
    society = load(name)
    size = BUILTINS[name]
    assert society.organisation is VOTE
    assert [a.name for a in society.agents] == [f"solver-{i}" for i in range(1, size + 1)]
    assert [a.options.seed for a in society.agents] == list(range(size))
    assert {a.options.temperature for a in society.agents} == {0.7}
    assert len({a.role for a in society.agents}) == 1


def test_unknown_society_reference() -> None:
    with pytest.raises(MinskyError) as err:
        load("vote4")
    message = str(err.value)
    assert "vote4" in message
    assert "vote5" in message  # lists the built-ins
    assert "\n" not in message


def test_load_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_FILE)
    society = load(str(path))
    assert society.source == str(path)
    assert society.name == "mine"
    assert [a.name for a in society.agents] == ["solver-1", "solver-2"]
    assert [a.options.seed for a in society.agents] == [3, 4]
    assert {a.options.temperature for a in society.agents} == {0.5}
    assert {a.model for a in society.agents} == {"fake:society"}
    assert {a.role for a in society.agents} == {"You solve things."}


# -- expansion -----------------------------------------------------------------------------


def test_count_expands_to_numbered_copies_with_their_own_seeds(make_society) -> None:
    society = make_society(
        agents=[{"name": "solver", "count": 5, "options": {"seed": 10, "temperature": 1.0}}]
    )
    assert [a.name for a in society.agents] == [f"solver-{i}" for i in range(1, 6)]
    assert [a.options.seed for a in society.agents] == [10, 11, 12, 13, 14]
    assert {a.options.temperature for a in society.agents} == {1.0}


def test_count_one_keeps_the_name_and_seed(make_society) -> None:
    society = make_society(agents=[{"name": "judge", "options": {"seed": 42}}])
    (agent,) = society.agents
    assert agent.name == "judge"
    assert agent.options.seed == 42
    assert agent.role == DEFAULT_ROLE
    assert agent.options == Options(seed=42)


def test_copies_without_a_seed_start_at_zero(make_society) -> None:
    society = make_society(agents=[{"name": "s", "count": 3}])
    assert [a.options.seed for a in society.agents] == [0, 1, 2]


def test_expansion_keeps_agent_order(make_society) -> None:
    society = make_society(
        agents=[{"name": "a", "count": 2}, {"name": "b"}, {"name": "c", "count": 2}]
    )
    assert [a.name for a in society.agents] == ["a-1", "a-2", "b", "c-1", "c-2"]


def test_members_carry_roles_options_and_grammar_support(make_society) -> None:
    society = make_society(
        agents=[
            {"name": "x", "role": "Role X", "model": "fake:g"},
            {"name": "y", "role": "Role Y", "model": "fake:plain"},
        ]
    )
    members = society.members({"fake:g": True, "fake:plain": False})
    assert [(m.name, m.role, m.constrained) for m in members] == [
        ("x", "Role X", True), ("y", "Role Y", False),
    ]
    assert members[0].options == society.agents[0].options


# -- model resolution ----------------------------------------------------------------------


def agents_models(society: Society) -> list[str]:
    return [a.model for a in society.agents]


def precedence_society(make_society, override: str | None, agent_model: bool, society_model: bool):
    agents = [{"name": "a", **({"model": "agent-model"} if agent_model else {})}, {"name": "b"}]
    return make_society(
        agents=agents,
        model="society-model" if society_model else None,
        override=override,
    )


def test_override_beats_everything(make_society, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINSKY_MODEL", "env-model")
    society = precedence_society(make_society, "override", True, True)
    assert agents_models(society) == ["override", "override"]


def test_agent_model_beats_society_model(make_society, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINSKY_MODEL", "env-model")
    society = precedence_society(make_society, None, True, True)
    assert agents_models(society) == ["agent-model", "society-model"]


def test_society_model_beats_env(make_society, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINSKY_MODEL", "env-model")
    society = precedence_society(make_society, None, False, True)
    assert agents_models(society) == ["society-model", "society-model"]


def test_env_beats_the_default(make_society, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINSKY_MODEL", "env-model")
    society = precedence_society(make_society, None, True, False)
    assert agents_models(society) == ["agent-model", "env-model"]


def test_default_model_is_qwen(make_society) -> None:
    society = precedence_society(make_society, None, False, False)
    assert agents_models(society) == ["qwen0.5b", "qwen0.5b"]


def test_empty_env_model_falls_back_to_the_default(
    make_society, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINSKY_MODEL", "")
    assert agents_models(precedence_society(make_society, None, False, False))[0] == "qwen0.5b"


def test_override_applies_to_builtins() -> None:
    assert {a.model for a in load("vote3", "echo:x").agents} == {"echo:x"}


# -- errors --------------------------------------------------------------------------------

AGENT = '\n[[agents]]\nname = "solver"\n'

BAD_FILES = {
    "unknown-top-level": (
        'name = "t"\norganisation = "vote"\ncolour = "red"\n' + AGENT,
        "colour",
    ),
    "unknown-option": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\n'
        "options = { temperatur = 0.7 }\n",
        "agents.0.options.temperatur",
    ),
    "wrong-type": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\n'
        'options = { temperature = "hot" }\n',
        "agents.0.options.temperature",
    ),
    "out-of-range": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\n'
        "options = { top_p = 0 }\n",
        "agents.0.options.top_p",
    ),
    "missing-agents": ('name = "t"\norganisation = "vote"\n', "agents"),
    "empty-agents": ('name = "t"\norganisation = "vote"\nagents = []\n', "agents"),
    "missing-name": ('organisation = "vote"\n' + AGENT, "name"),
    "unknown-organisation": ('name = "t"\norganisation = "parliament"\n' + AGENT, "organisation"),
    "bad-params-key": (
        'name = "t"\norganisation = "vote"\n[params]\nrepiar = true\n' + AGENT,
        "params.repiar",
    ),
    "bad-params-type": (
        'name = "t"\norganisation = "vote"\n[params]\nrepair = "maybe"\n' + AGENT,
        "params.repair",
    ),
    "bad-budget": (
        'name = "t"\norganisation = "vote"\n[budget]\nmax_rounds = 0\n' + AGENT,
        "budget.max_rounds",
    ),
    "bad-agent-name": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "2fast"\n',
        "agents.0.name",
    ),
    "bad-count": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\ncount = 0\n',
        "agents.0.count",
    ),
    "unknown-agent-field": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\nrole = """two\nlines"""\n'
        "temperature = 0.5\n",
        "agents.0.temperature",
    ),
    "duplicate-names": (
        'name = "t"\norganisation = "vote"\n' + AGENT + AGENT,
        "agents",
    ),
    "duplicate-after-count": (
        'name = "t"\norganisation = "vote"\n[[agents]]\nname = "s"\ncount = 2\n'
        '[[agents]]\nname = "s-2"\n',
        "agents",
    ),
    "single-with-two": (
        'name = "t"\norganisation = "single"\n[[agents]]\nname = "a"\n[[agents]]\nname = "b"\n',
        "agents",
    ),
    "examples-for-nobody": (
        'name = "t"\norganisation = "consensus"\n[params]\nexamples = { shwon = 1 }\n'
        '[[agents]]\nname = "r"\ngroup = "reasoner"\n'
        '[[agents]]\nname = "shown"\ngroup = "programmer"\ncount = 2\n',
        "params.examples",
    ),
    "examples-for-a-copy": (  # a table names agents of the file, not their copies
        'name = "t"\norganisation = "consensus"\n[params]\nexamples = { shown-1 = 1 }\n'
        '[[agents]]\nname = "r"\ngroup = "reasoner"\n'
        '[[agents]]\nname = "shown"\ngroup = "programmer"\ncount = 2\n',
        "params.examples",
    ),
    "single-with-count": (
        'name = "t"\norganisation = "single"\n[[agents]]\nname = "a"\ncount = 2\n',
        "agents",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_society_file_is_one_line_naming_file_and_field(tmp_path: Path, case: str) -> None:
    text, field = BAD_FILES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MinskyError) as err:
        load(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert f"field '{field}'" in message
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in message
    # no pydantic error chained to it, to be printed as a second traceback
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_error_messages_say_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_FILES["wrong-type"][0])
    with pytest.raises(MinskyError, match=r"valid number.*\(got 'hot'\)"):
        load(str(path))
    path = write(tmp_path, BAD_FILES["unknown-organisation"][0])
    with pytest.raises(MinskyError, match=r"unknown organisation 'parliament'.*'vote'"):
        load(str(path))
    path = write(tmp_path, BAD_FILES["duplicate-names"][0])
    with pytest.raises(MinskyError, match=r"duplicate agent names \['solver'\]"):
        load(str(path))
    path = write(tmp_path, BAD_FILES["single-with-two"][0])
    with pytest.raises(MinskyError, match=r"'single'.*1 agent\(s\).*got 2"):
        load(str(path))


def test_several_errors_are_all_named_on_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "t"\norganisation = "vote"\ncolour = 1\n[[agents]]\nname = "s"\n'
        'options = { temperatur = 1, max_tokens = "many" }\n',
    )
    with pytest.raises(MinskyError) as err:
        load(str(path))
    message = str(err.value)
    assert "\n" not in message
    for field in ("colour", "agents.0.options.temperatur", "agents.0.options.max_tokens"):
        assert f"field '{field}'" in message


@pytest.mark.parametrize(
    "text", ['name = ', 'name = "x"\nname = "y"\n', '[[agents]\nname = "a"\n', 'a = """open']
)
def test_invalid_toml_is_one_line_naming_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MinskyError) as err:
        load(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert "\n" not in message


def test_from_dict_uses_the_given_source() -> None:
    with pytest.raises(MinskyError) as err:
        from_dict({"name": "t", "organisation": "vote"}, "run 01XYZ")
    assert str(err.value) == "run 01XYZ: field 'agents': Field required"
