"""minsky's built-in backends and organisations, registered as a plugin like any other."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

from pydantic import BaseModel, Field

from minsky.backends.base import Backend
from minsky.errors import MinskyError
from minsky.organisations.base import Organisation
from minsky.plugin_api import (
    BackendSettings,
    BackendType,
    LoaderType,
    ToolContext,
    ToolType,
    hookimpl,
)
from minsky.strict import Strict
from minsky.tools.base import Tool, ToolError


def _llama(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.llama import LlamaBackend
    from minsky.models import resolve_gguf, split_adapter

    base, adapter = split_adapter(spec)
    if adapter is not None and not adapter.is_file():
        # before resolving the base: a shipped base may take a while to assemble
        raise MinskyError(f"model {spec!r}: LoRA adapter {adapter} does not exist")
    path = resolve_gguf(base)
    if adapter is not None:
        from minsky.star.adapter import check_adapter

        check_adapter(adapter, path)
    return LlamaBackend(
        path,
        n_ctx=settings.n_ctx,
        n_parallel=settings.parallel,
        n_threads=settings.threads,
        prefix_cache=settings.prefix_cache,
        lora=adapter,
    )


def _openai(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.base import check_real_model
    from minsky.backends.openai import (
        DEFAULT_BASE_URL,
        OpenAIBackend,
        split_endpoint,
        timeout_from_env,
    )

    url, name = split_endpoint(spec)
    timeout = timeout_from_env()
    # a request and its retries get half as long again as one attempt, at least the default
    backend = OpenAIBackend(name, base_url=url, concurrency=settings.parallel,
                            timeout_s=timeout, deadline_s=max(180.0, 1.5 * timeout))
    if backend.base_url == DEFAULT_BASE_URL and not backend.api_key:
        # without a server named anywhere, requests would quietly go to the public API
        raise MinskyError(f"model openai:{spec}: no server given; set MINSKY_OPENAI_BASE_URL "
                          "(or write openai:URL#MODEL), or OPENAI_API_KEY to use "
                          f"{DEFAULT_BASE_URL}")
    check_real_model(f"model openai:{spec}", backend.base_url)
    return backend


def _echo(spec: str, settings: BackendSettings) -> Backend:
    from minsky.backends.fakes import EchoBackend

    # `spec` is what follows "echo:": a number is a delay in seconds (a slow fake, to try
    # progress bars and Ctrl-C); anything else only names a separate instance.
    try:
        seconds = float(spec)
    except ValueError:
        seconds = 0.0
    if not 0 <= seconds <= 3600:
        raise MinskyError(f"model 'echo:{spec}': a delay is 0 to 3600 seconds")
    return EchoBackend(delay_s=seconds)


@hookimpl
def register_backends(register: Callable[[BackendType], None]) -> None:
    register(BackendType("llama", _llama, "a local GGUF model run by llama.cpp in-process"))
    register(BackendType("openai", _openai,
                         "any OpenAI-compatible server (openai:MODEL or openai:URL#MODEL)"))
    register(BackendType("echo", _echo,
                         "a fake that repeats the question (echo:NAME; echo:0.5 takes 0.5 s)"))


@hookimpl
def register_organisations(register: Callable[[Organisation], None]) -> None:
    from minsky.organisations.consensus import CONSENSUS
    from minsky.organisations.contest import CONTEST
    from minsky.organisations.critique import CRITIQUE
    from minsky.organisations.debate import DEBATE
    from minsky.organisations.democracy import DEMOCRACY
    from minsky.organisations.drafts import DRAFTS
    from minsky.organisations.mixture import MIXTURE
    from minsky.organisations.monarchy import MONARCHY
    from minsky.organisations.prompt import PROMPT
    from minsky.organisations.roleplay import ROLEPLAY
    from minsky.organisations.vote import SINGLE, VOTE

    for org in (SINGLE, VOTE, MONARCHY, DEMOCRACY, DEBATE, MIXTURE, ROLEPLAY, CONTEST,
                CONSENSUS, PROMPT, CRITIQUE, DRAFTS):
        register(org)


class SearchOptions(Strict):
    path: str = Field(description="a folder of .txt/.md files or a JSONL with a text field")
    k: int = Field(1, ge=1, le=10, description="passages returned")
    max_chars: int = Field(400, ge=20)
    max_bytes: int = Field(8 * 1024 * 1024, ge=1, le=1024**3,
                           description="a larger collection is refused, not read")


class AskOptions(Strict):
    society: str = Field(description="the society that answers: a built-in name or a file")


def _calculator(options: BaseModel, context: ToolContext) -> Tool:
    from minsky.tools.calculator import CALCULATOR

    return CALCULATOR


def _calendar(options: BaseModel, context: ToolContext) -> Tool:
    from minsky.tools.calendar import CALENDAR

    return CALENDAR


def _python(options: BaseModel, context: ToolContext) -> Tool:
    from minsky.pyrun import PYTHON_TOOL

    return PYTHON_TOOL


def _search(options: SearchOptions, context: ToolContext) -> Tool:
    from minsky.tools.search import make_search

    path = Path(options.path).expanduser()
    return make_search(path if path.is_absolute() else context.base / path, options.k,
                       options.max_chars, options.max_bytes)


# how many Ask calls deep the current task is: a society that asks itself (directly or
# round a cycle) is stopped at the depth that also bounds nested societies
_ASK_DEPTH: ContextVar[int] = ContextVar("minsky_ask_depth", default=0)
# the same as `minsky.society.MAX_DEPTH`, which is not imported here: the society module
# imports the plugin registry, which imports this module (tests check the two agree)
MAX_DEPTH = 4


def _ask(options: AskOptions, context: ToolContext) -> Tool:
    runner, load = context.runner, context.load
    if runner is None or load is None:
        raise MinskyError("the Ask tool needs a runner that can load societies")
    ref = options.society
    local = context.base / ref
    society = load(str(local) if local.is_file() else ref)
    account = context.account

    async def ask(question: str) -> str:
        depth = _ASK_DEPTH.get()
        if depth >= MAX_DEPTH:
            raise ToolError(f"Ask calls nest deeper than {MAX_DEPTH} levels "
                            "(does a society ask itself?)")
        if account is not None and (spent := account.stop()) is not None:
            raise ToolError(f"the asking society's budget has run out ({spent})")
        token = _ASK_DEPTH.set(depth + 1)
        try:
            # the runner runs it beneath the asker, on the asker's account: the asker's
            # tokens, calls and deadline (and those of every run above it) bound it too
            result = await runner.run(society, question)
        finally:
            _ASK_DEPTH.reset(token)
        return result.outcome.text or result.outcome.answer or f"no answer ({result.status})"

    return Tool("Ask", f"question answering by the society {society.name}", ask,
                examples=(("What is the capital of France?", "Paris"),))


@hookimpl
def register_tools(register: Callable[[ToolType], None]) -> None:
    register(ToolType("Calculator", _calculator, description="+ - * / ^ ( ) and decimals"))
    register(ToolType("Calendar", _calendar, description="today's date and date arithmetic"))
    register(ToolType("Search", _search, SearchOptions, "BM25 over a local collection"))
    register(ToolType("Python", _python,
                      description="runs a short program in minsky's own Python-subset "
                                  "interpreter (never exec)"))
    register(ToolType("Ask", _ask, AskOptions, "another society answers a question"))


@hookimpl
def register_loaders(register: Callable[[LoaderType], None]) -> None:
    from minsky.evals.formats import LOADERS

    for loader in LOADERS:
        register(loader)
