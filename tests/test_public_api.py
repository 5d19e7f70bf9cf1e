"""The public surface (`minsky.__all__`) and the pluggy extension points."""

from __future__ import annotations

import ast
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import minsky
from minsky import plugins
from minsky.backends.fakes import EchoBackend, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.organisations.base import (
    NoParams,
    Organisation,
    OrgRun,
    Outcome,
    SocietyView,
    Task,
)
from minsky.organisations.vote import VOTE
from minsky.plugin_api import BackendSettings, BackendType, hookimpl
from minsky.runner import Runner
from minsky.society import from_dict

# -- __all__ -------------------------------------------------------------------------------


def imported_names() -> set[str]:
    """Every name bound by an import statement in src/minsky/__init__.py."""
    tree = ast.parse(Path(minsky.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from minsky import *", namespace)  # noqa: S102 - the star import is the subject
    for name in minsky.__all__:
        assert getattr(minsky, name) is not None
        assert namespace[name] is getattr(minsky, name)


def test_all_is_sorted_without_duplicates() -> None:
    assert minsky.__all__ == sorted(minsky.__all__)
    assert len(set(minsky.__all__)) == len(minsky.__all__)


def test_all_is_complete_for_the_imported_names() -> None:
    assert set(minsky.__all__) == imported_names()


def test_public_names_are_the_real_objects() -> None:
    from minsky.runner import RunResult
    from minsky.society import load

    assert minsky.load_society is load
    assert minsky.RunResult is RunResult
    assert minsky.ScriptedBackend is ScriptedBackend
    assert issubclass(minsky.MinskyError, Exception)


# -- built-in plugins ----------------------------------------------------------------------


def test_builtin_organisations() -> None:
    orgs = plugins.organisations()
    assert {"single", "vote"} <= set(orgs)
    assert orgs["vote"] is VOTE
    assert all(name == org.name for name, org in orgs.items())


def test_builtin_backend_types() -> None:
    types_ = plugins.backend_types()
    assert {"llama", "openai", "echo"} <= set(types_)
    assert all(isinstance(t, BackendType) and t.description for t in types_.values())
    assert isinstance(types_["echo"].create("x", BackendSettings()), EchoBackend)


def test_the_manager_is_shared() -> None:
    assert plugins.manager() is plugins.manager()


def test_backend_settings_reject_typos() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BackendSettings.model_validate({"thread": 4})


# -- a third-party plugin ------------------------------------------------------------------


def _first_member_says(task: Task, view: SocietyView) -> OrgRun:
    from minsky.organisations.answering import answer_all

    answers = yield from answer_all(view.members[:1], task, repair=False)
    return Outcome(answers[0].answer, answers, detail={"plugin": True})


PLUGIN_ORG = Organisation("first-says", _first_member_says, NoParams, "the first member decides")


def make_plugin(**hooks: Callable[..., None]) -> types.ModuleType:
    module = types.ModuleType("minsky_test_plugin")
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


@pytest.fixture
def register_plugin() -> Iterator[Callable[[types.ModuleType], None]]:
    pm = plugins.manager()
    registered: list[types.ModuleType] = []

    def register(module: types.ModuleType) -> None:
        pm.register(module)
        registered.append(module)

    yield register
    for module in registered:
        if pm.is_registered(module):
            pm.unregister(module)
    plugins.manager.cache_clear()  # the next test gets a manager built from scratch


def test_third_party_organisation_plugin(register_plugin) -> None:
    def register_organisations(register: Callable[[Organisation], None]) -> None:
        register(PLUGIN_ORG)

    assert "first-says" not in plugins.organisations()
    register_plugin(make_plugin(register_organisations=register_organisations))
    orgs = plugins.organisations()
    assert orgs["first-says"] is PLUGIN_ORG
    assert {"single", "vote"} <= set(orgs)  # the built-ins are still there


async def test_third_party_organisation_runs_end_to_end(register_plugin) -> None:
    def register_organisations(register: Callable[[Organisation], None]) -> None:
        register(PLUGIN_ORG)

    register_plugin(make_plugin(register_organisations=register_organisations))
    society = from_dict(
        {"name": "p", "organisation": "first-says", "model": "fake:a",
         "agents": [{"name": "a"}, {"name": "b"}]},
        "plugin.toml",
    )
    assert society.organisation is PLUGIN_ORG
    backend = ScriptedBackend(["The answer is 11."])
    result = await Runner(Backends(overrides={"fake:a": backend})).run(society, "What is 5+6?")
    assert result.status == "ok"
    assert result.answer == "11"
    assert result.outcome.detail == {"plugin": True}
    assert len(backend.requests) == 1


def test_plugin_params_are_validated(register_plugin) -> None:
    def register_organisations(register: Callable[[Organisation], None]) -> None:
        register(PLUGIN_ORG)

    register_plugin(make_plugin(register_organisations=register_organisations))
    with pytest.raises(MinskyError, match="field 'params.anything'"):
        from_dict(
            {"name": "p", "organisation": "first-says", "params": {"anything": 1},
             "agents": [{"name": "a"}]},
            "plugin.toml",
        )


def test_unregistered_plugin_is_gone(register_plugin) -> None:
    def register_organisations(register: Callable[[Organisation], None]) -> None:
        register(PLUGIN_ORG)

    module = make_plugin(register_organisations=register_organisations)
    register_plugin(module)
    assert "first-says" in plugins.organisations()
    plugins.manager().unregister(module)
    assert "first-says" not in plugins.organisations()
    with pytest.raises(MinskyError, match="unknown organisation 'first-says'"):
        from_dict({"name": "p", "organisation": "first-says", "agents": [{"name": "a"}]}, "x")


def test_third_party_backend_type(register_plugin) -> None:
    made: list[str] = []

    def create(spec: str, settings: BackendSettings):
        made.append(spec)
        return ScriptedBackend(["hi"])

    def register_backends(register: Callable[[BackendType], None]) -> None:
        register(BackendType("scripted", create, "canned replies"))

    register_plugin(make_plugin(register_backends=register_backends))
    backend = Backends().get("scripted:demo")
    assert isinstance(backend, ScriptedBackend)
    assert made == ["demo"]


def test_an_unknown_model_lists_every_backend_plugins_too(register_plugin) -> None:
    def register_backends(register: Callable[[BackendType], None]) -> None:
        register(BackendType("scripted", lambda spec, settings: ScriptedBackend([])))

    register_plugin(make_plugin(register_backends=register_backends))
    with pytest.raises(MinskyError) as err:
        Backends().get("gpt5")
    message = str(err.value)
    assert "model 'gpt5'" in message and "qwen0.5b" in message
    for spec in ("echo:MODEL", "openai:MODEL", "scripted:MODEL"):
        assert spec in message, message


def test_two_plugins_with_one_name_are_an_error(register_plugin) -> None:
    def register_organisations(register: Callable[[Organisation], None]) -> None:
        register(Organisation("vote", _first_member_says))

    register_plugin(make_plugin(register_organisations=register_organisations))
    with pytest.raises(MinskyError, match="two plugins register organisation 'vote'"):
        plugins.organisations()


def test_plugins_are_cleaned_up_between_tests() -> None:
    # runs after the tests above in file order: none of their plugins may linger
    orgs = plugins.organisations()
    assert "first-says" not in orgs
    assert orgs["vote"] is VOTE


def test_plugin_authors_import_what_they_register_from_the_top() -> None:
    from minsky import Case, LoaderType, Tool, ToolType, load_benchmark
    from minsky.evals.benchmarks import load_benchmark as real_load
    from minsky.plugin_api import Case as ApiCase
    from minsky.tools.base import Tool as RealTool

    assert load_benchmark is real_load and Case is ApiCase and Tool is RealTool
    assert {"Case", "LoaderType", "Tool", "ToolType", "load_benchmark"} <= set(minsky.__all__)
    assert LoaderType.__module__ == ToolType.__module__ == "minsky.plugin_api"


def test_the_plugin_api_is_a_leaf() -> None:
    """What a plugin imports loads no registry, no runner, no society: only the answer
    kinds, the strict base model and the run account, which needs only the message types
    (and, for type checkers alone, the types it names)."""

    def imports(module: str) -> set[str]:
        tree = ast.parse(Path(minsky.__file__).with_name(f"{module}.py").read_text())
        imported = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
        return {m for m in imported if m and m.startswith("minsky")}

    assert imports("plugin_api") == {"minsky.answers", "minsky.strict", "minsky.account"}
    assert imports("account") == {"minsky.messages"}
    assert imports("messages") == {"minsky.strict"}


def test_a_backend_without_scoring_refuses_clearly() -> None:
    # scoring is a protocol a backend implements (`Scoring`), not a method every backend
    # has: one asked for it that does not have it is refused by `scoring`
    from minsky.backends.base import scoring

    with pytest.raises(MinskyError, match="echo cannot give token log-probabilities"):
        scoring(EchoBackend())
