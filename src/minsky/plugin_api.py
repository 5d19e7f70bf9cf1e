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
without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy
from pydantic import BaseModel, Field

from minsky.account import Account
from minsky.answers import AnswerKind
from minsky.strict import Strict

__all__ = ["BackendSettings", "BackendType", "Case", "LoaderType", "NoOptions", "Specs",
           "ToolContext", "ToolType", "hookimpl", "hookspec"]

if TYPE_CHECKING:
    from minsky.backends.base import Backend
    from minsky.organisations.base import Organisation
    from minsky.runner import Runner
    from minsky.society import Society
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


@dataclass(frozen=True)
class ToolContext:
    """What a tool factory may use: the runner (for a society as a tool), the folder of
    the society file (for relative paths), `load(ref)`, which loads a society (a built-in
    name or a file) for a tool that asks one, the run the tool serves (its `parent`) and
    that run's account, which a society the tool runs draws on (`Runner.run(account=)`)."""

    runner: Runner | None
    base: Path
    load: Callable[[str], Society] | None = None
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


