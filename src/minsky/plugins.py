"""Extension points: backends and organisations register through pluggy hooks.

The built-ins register through the very hooks a third-party package uses (the `minsky`
entry-point group), so a plugin is a module with `@hookimpl` functions:

    from minsky.plugins import hookimpl

    @hookimpl
    def register_organisations(register):
        register(Organisation("mine", my_generator, MyParams, "what it does"))

and, in the plugin's pyproject.toml, `[project.entry-points.minsky] mine = "my_module"`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, ConfigDict, Field

from minsky.errors import MinskyError

if TYPE_CHECKING:
    from minsky.backends.base import Backend
    from minsky.loaders import LoaderType
    from minsky.organisations.base import Organisation
    from minsky.tools.base import Tool

hookspec = pluggy.HookspecMarker("minsky")
hookimpl = pluggy.HookimplMarker("minsky")


class BackendSettings(BaseModel):
    """Settings shared by backends that run a model in this process."""

    model_config = ConfigDict(extra="forbid")

    threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores)")
    n_ctx: int = Field(16384, ge=512, description="KV cache size in tokens, all slots together")
    parallel: int = Field(8, ge=1, le=64, description="sequences decoded in one batch")
    prefix_cache: bool = Field(True, description="reuse cached prompt prefixes across calls")


@dataclass(frozen=True)
class BackendType:
    """A registered backend: `create(spec, settings)` builds one for a model spec."""

    name: str
    create: Callable[[str, BackendSettings], Backend]
    description: str = ""


class NoOptions(BaseModel):
    """For tools without options: any key is a typo."""

    model_config = ConfigDict(extra="forbid")


class TokenAccount:
    """Tokens a run's tools spend on its behalf (a society asked through `Ask`): the
    runner counts them against the run's token budget, as it does its members' replies."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.run_total = 0  # the run's usage as of its last round (the runner keeps it)
        self._untaken = 0  # spent since the runner last took it into the run's usage

    @property
    def left(self) -> int:
        """Tokens the run has left to spend."""
        return self.limit - self.run_total - self._untaken

    def spend(self, tokens: int) -> None:
        self._untaken += max(0, tokens)

    def take(self) -> int:
        """The tokens spent since the last call."""
        tokens, self._untaken = self._untaken, 0
        return tokens


@dataclass(frozen=True)
class ToolContext:
    """What a tool factory may use: the runner (for a society as a tool), the folder of
    the society file (for relative paths), the run the tool serves (its `parent`) and that
    run's token account."""

    runner: Any
    base: Path
    parent: str | None = None
    account: TokenAccount | None = None


@dataclass(frozen=True)
class ToolType:
    """A registered tool: `create(options, context)` builds it from its validated options."""

    name: str
    create: Callable[[BaseModel, ToolContext], Tool]
    options: type[BaseModel] = NoOptions
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
        """Register benchmark formats by calling `register(minsky.loaders.LoaderType(...))`."""


@cache
def manager() -> pluggy.PluginManager:
    """The plugin manager, with entry-point plugins (the built-ins among them) loaded."""
    pm = pluggy.PluginManager("minsky")
    pm.add_hookspecs(Specs)
    pm.load_setuptools_entrypoints("minsky")
    from minsky import builtin

    # running from a source tree that was never installed: no entry points to find
    if not pm.is_registered(builtin):
        pm.register(builtin, name="builtin")
    return pm


def _collect(hook: str) -> dict[str, object]:
    found: dict[str, object] = {}

    def register(item: object) -> None:
        name = item.name  # type: ignore[attr-defined]
        if name in found:
            raise MinskyError(f"two plugins register {hook.split('_')[1][:-1]} {name!r}")
        found[name] = item

    getattr(manager().hook, hook)(register=register)
    return found


def organisations() -> dict[str, Organisation]:
    """All registered organisations by name."""
    return _collect("register_organisations")  # type: ignore[return-value]


def backend_types() -> dict[str, BackendType]:
    """All registered backend types by name."""
    return _collect("register_backends")  # type: ignore[return-value]


def tool_types() -> dict[str, ToolType]:
    """All registered tools by name."""
    return _collect("register_tools")  # type: ignore[return-value]


def loader_types() -> dict[str, LoaderType]:
    """All registered benchmark formats by name, in registration order."""
    return _collect("register_loaders")  # type: ignore[return-value]
