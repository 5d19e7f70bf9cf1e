"""minsky's built-in backends and organisations, registered as a plugin like any other."""

from __future__ import annotations

from collections.abc import Callable

from minsky.backends.base import Backend
from minsky.organisations.base import Organisation
from minsky.plugins import BackendSettings, BackendType, hookimpl


def _llama(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.llama import LlamaBackend
    from minsky.models import resolve_gguf

    return LlamaBackend(
        resolve_gguf(spec),
        n_ctx=settings.n_ctx,
        n_parallel=settings.parallel,
        n_threads=settings.threads,
        prefix_cache=settings.prefix_cache,
    )


def _openai(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.openai import OpenAIBackend

    return OpenAIBackend(spec, concurrency=settings.parallel)


def _echo(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.fakes import EchoBackend

    return EchoBackend()


@hookimpl
def register_backends(register: Callable[[BackendType], None]) -> None:
    register(BackendType("llama", _llama, "a local GGUF model run by llama.cpp in-process"))
    register(BackendType("openai", _openai, "any OpenAI-compatible server (openai:MODEL)"))
    register(BackendType("echo", _echo, "a fake that repeats the question (echo:)"))


@hookimpl
def register_organisations(register: Callable[[Organisation], None]) -> None:
    from minsky.organisations.contest import CONTEST
    from minsky.organisations.debate import DEBATE
    from minsky.organisations.democracy import DEMOCRACY
    from minsky.organisations.mixture import MIXTURE
    from minsky.organisations.monarchy import MONARCHY
    from minsky.organisations.roleplay import ROLEPLAY
    from minsky.organisations.vote import SINGLE, VOTE

    for org in (SINGLE, VOTE, MONARCHY, DEMOCRACY, DEBATE, MIXTURE, ROLEPLAY, CONTEST):
        register(org)
