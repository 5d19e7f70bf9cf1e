"""The plugin registry: finds plugins (the built-ins among them) and collects what they
register — backends, organisations, tools, benchmark formats.

Plugins import the API (`hookimpl`, `BackendType`, …) from `minsky.plugin_api` or `minsky`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import pluggy

from minsky.errors import MinskyError
from minsky.plugin_api import BackendType, LoaderType, Specs, ToolType

if TYPE_CHECKING:
    from minsky.organisations.base import Organisation

__all__ = ["backend_types", "loader_types", "manager", "organisations", "registry",
           "tool_types"]


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


def registry(hook: str) -> dict[str, tuple[object, str]]:
    """What the plugins register through `hook` ("register_tools", …): name → (the item,
    the name of the plugin that registered it). Two plugins registering one name is an
    error."""
    found: dict[str, tuple[object, str]] = {}
    for impl in getattr(manager().hook, hook).get_hookimpls():

        def register(item: object, plugin: str = impl.plugin_name) -> None:
            name = item.name  # type: ignore[attr-defined]
            if name in found:
                raise MinskyError(f"two plugins register {hook.split('_')[1][:-1]} {name!r} "
                                  f"({found[name][1]} and {plugin})")
            found[name] = (item, plugin)

        impl.function(register=register)
    # pluggy calls the last registered plugin first: list in registration order
    return dict(sorted(found.items(), key=lambda kv: _order(hook).index(kv[1][1])))


def _order(hook: str) -> list[str]:
    return [impl.plugin_name for impl in getattr(manager().hook, hook).get_hookimpls()]


def _collect(hook: str) -> dict[str, object]:
    return {name: item for name, (item, _) in registry(hook).items()}


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
