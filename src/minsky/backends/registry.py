"""`Backends`: one backend per model spec, made on first use from the registered types."""

from __future__ import annotations

from minsky.backends.base import Backend
from minsky.models import MODELS, UnknownModel
from minsky.plugin_api import BackendSettings
from minsky.plugins import backend_types


class Backends:
    """One backend per model spec, shared by every agent (and society) that uses it.

    `overrides` maps a model spec to a ready backend; tests use it to run societies on
    the scripted fakes.
    """

    def __init__(
        self,
        settings: BackendSettings | None = None,
        overrides: dict[str, Backend] | None = None,
    ) -> None:
        self.settings = settings or BackendSettings()
        self._made: dict[str, Backend] = dict(overrides or {})

    def get(self, spec: str) -> Backend:
        if spec not in self._made:
            types = backend_types()
            scheme, sep, rest = spec.partition(":")
            if sep and scheme in types and spec not in MODELS:
                self._made[spec] = types[scheme].create(rest, self.settings)
            else:
                try:
                    self._made[spec] = types["llama"].create(spec, self.settings)
                except UnknownModel as err:
                    others = ", ".join(f"{name}:MODEL" for name in sorted(types)
                                       if name != "llama")
                    raise UnknownModel(f"{err}; or use a backend: {others}") from None
        return self._made[spec]

    async def aclose(self) -> None:
        for backend in self._made.values():
            await backend.aclose()


__all__ = ["Backends"]
