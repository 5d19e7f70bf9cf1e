"""The plugin API: everything a plugin imports, and nothing that loads plugins.

A plugin is a module with `@hookimpl` functions that register what it adds:

    from minsky.plugin_api import hookimpl

    @hookimpl
    def register_organisations(register):
        register(Organisation("mine", my_generator, MyParams, "what it does"))

and, in the plugin's pyproject.toml, `[project.entry-points.minsky] mine = "my_module"`.
The registry that finds plugins and collects what they register is `minsky.plugins`;
this module imports nothing of minsky's but the answer kinds, the strict base model
(`Strict`, which a plugin's parameter and option models derive from) and the run
`Account` (a tool that runs a society spends from it), so any module may import it
without an import circle. The runner and the society loader a tool is handed are typed
as Protocols (`SocietyRunner`, `SocietyLoader`), and the types its hooks name are imported
for the type checker alone, from modules beneath this one: no circle remains even counting
those (tests/test_import_graph.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import pluggy
from pydantic import BaseModel, Field

from minsky.account import Account
from minsky.answers import AnswerKind
from minsky.strict import Strict

__all__ = ["BackendSettings", "BackendType", "Case", "LoaderType", "NoOptions", "RunReport",
           "SocietyLike", "SocietyLoader", "SocietyRunner", "Specs",
           "ToolContext", "ToolType", "hookimpl", "hookspec"]

if TYPE_CHECKING:
    from minsky.backends.base import Backend
    from minsky.organisations.base import Organisation, Outcome
    from minsky.tools.base import Tool

hookspec = pluggy.HookspecMarker("minsky")
hookimpl = pluggy.HookimplMarker("minsky")


class BackendSettings(Strict):
    """Settings shared by backends that run a model in this process."""

    threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores)")
    n_ctx: int = Field(16384, ge=512, description="KV cache size in tokens, all slots together")
    parallel: int = Field(16, ge=1, le=64, description="sequences decoded in one batch")
    prefix_cache: bool = Field(True, description="reuse cached prompt prefixes across calls")


@dataclass(frozen=True)
class BackendType:
    """A registered backend: `create(spec, settings)` builds one for a model spec."""

    name: str
    create: Callable[[str, BackendSettings], Backend]
    description: str = ""


class NoOptions(Strict):
    """For tools without options: any key is a typo."""


class SocietyLike(Protocol):
    """A loaded society, as a tool sees it (`minsky.society.Society` is one)."""

    @property
    def name(self) -> str: ...


class RunReport(Protocol):
    """What a tool reads of a run it started (`minsky.runner.RunResult` is one)."""

    @property
    def status(self) -> str: ...

    @property
    def outcome(self) -> Outcome: ...


class SocietyLoader(Protocol):
    """`load(ref)`: the society a built-in name or a society file names."""

    def __call__(self, ref: str, /) -> SocietyLike: ...


class SocietyRunner(Protocol):
    """Runs a society that `SocietyLoader` loaded on a question, as a run beneath the one a
    tool serves (it draws on that run's account); `kind` None is the society's own."""

    async def run(self, society: SocietyLike, question: str,
                  kind: AnswerKind | None = None) -> RunReport: ...


@dataclass(frozen=True)
class ToolContext:
    """What a tool factory may use: a runner whose runs serve the tool's run (for a
    society as a tool), the folder of the society file (for relative paths), `load(ref)`,
    which loads a society (a built-in name or a file) for a tool that asks one, the run
    the tool serves (its `parent`) and that run's account, which a society the tool runs
    draws on."""

    runner: SocietyRunner | None
    base: Path
    load: SocietyLoader | None = None
    parent: str | None = None
    account: Account | None = None


OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True)
class ToolType(Generic[OptionsT]):
    """A registered tool: `create(options, context)` builds it from its options, already
    validated as its `options` model."""

    name: str
    create: Callable[[OptionsT, ToolContext], Tool]
    options: type[OptionsT] = NoOptions  # type: ignore[assignment]  # (then it is NoOptions)
    description: str = ""


class Specs:
    @hookspec
    def register_backends(self, register: Callable[[BackendType], None]) -> None:
        """Register backend types by calling `register(BackendType(...))`."""

    @hookspec
    def register_organisations(self, register: Callable[[Organisation], None]) -> None:
        """Register organisations by calling `register(Organisation(...))`."""

    @hookspec
    def register_tools(self, register: Callable[[ToolType], None]) -> None:
        """Register tools by calling `register(ToolType(...))`."""

    @hookspec
    def register_loaders(self, register: Callable[[LoaderType], None]) -> None:
        """Register benchmark formats by calling `register(LoaderType(...))`."""


@dataclass(frozen=True)
class Case:
    """One benchmark question. For a choice question `question` holds the stem and one line
    per option ("A) text"), `choices` the letters offered; `answer` is the normalised gold."""

    id: str
    question: str
    answer: str
    kind: AnswerKind
    choices: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True)
class LoaderType:
    """A benchmark format: `load(path)` reads a file or a folder of .jsonl files, `detect`
    recognises the format from a file's first record."""

    name: str
    load: Callable[[Path], list[Case]]
    detect: Callable[[dict[str, Any]], bool]
    description: str = ""


