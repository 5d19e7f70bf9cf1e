"""Society files: what a user writes, validated by pydantic, with one-line errors.

A society file is TOML:

    name = "vote5"
    organisation = "vote"          # a registered organisation
    model = "qwen0.5b"             # default model of its agents (name, GGUF path, openai:M)

    [budget]                       # hard limits so no run can go on forever
    max_rounds = 4
    max_tokens = 20000
    timeout_s = 600

    [params]                       # the organisation's own parameters, validated by it

    [[agents]]
    name = "solver"
    role = "You are a careful solver of math word problems."
    count = 5                      # five copies: solver-1 … solver-5, seeds base+0 … base+4
    options = { temperature = 0.7, max_tokens = 384, seed = 0 }

Built-in societies ship in `minsky/societies/` and are addressed by name (`vote5`).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from minsky.answers import AnswerKind
from minsky.errors import MinskyError
from minsky.inputs.limits import load_toml
from minsky.messages import Options
from minsky.models import default_model
from minsky.organisations.base import Member, Organisation, answer_kind
from minsky.plugins import organisations, tool_types
from minsky.strict import Strict, error_line
from minsky.tools.calls import ToolLimits

DEFAULT_ROLE = "You are a helpful, careful assistant. You reason step by step."
# what `minsky ask` and `minsky batch` run without --society: the built-in society that
# measurably beats its single member (docs/benchmarks.md, "A society that beats its member")
DEFAULT_SOCIETY = "consensus"
MAX_DEPTH = 4  # societies nested deeper than this are refused (it also stops cycles)
MAX_MEMBERS = 256  # members of one society, copies counted: beyond it a file is refused
# members that ask a model in a whole tree of nested societies, copies counted: each file
# within MAX_MEMBERS still multiplies, and three files could otherwise make 16.7 million
MAX_TREE_MEMBERS = 4096
MAX_FILE_BYTES = 4 * 1024 * 1024  # far above any real society; parsing more takes seconds


class Budget(Strict):
    """Limits a run cannot exceed; hitting one stops the run with a status in the log."""

    max_rounds: int = Field(8, ge=1, le=1000)
    max_tokens: int = Field(100_000, ge=1)
    # replies asked of models (one continued past tool calls is one): a bound that holds
    # when a server reports no usage, or less than it used
    max_calls: int = Field(10_000, ge=1, le=1_000_000)
    # finite: "no run can go on forever" (a week is far beyond any real run)
    timeout_s: float = Field(1800.0, gt=0, le=7 * 24 * 3600, allow_inf_nan=False)


class AgentConfig(Strict):
    """One agent (or `count` copies of it)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)
    role: str = DEFAULT_ROLE
    group: str = Field("member", pattern=r"^[a-z][a-z0-9_-]*$")
    model: str | None = None
    # a whole society as this member: a built-in name or a file (relative to this one)
    society: str | None = None
    tools: list[str] = Field(default_factory=list, description="tools it may call inline")
    count: int = Field(1, ge=1, le=64)
    options: Options = Field(default_factory=Options)

    @model_validator(mode="after")
    def _one_engine(self) -> AgentConfig:
        if self.society is not None and self.model is not None:
            raise ValueError("give either model or society, not both")
        return self


class SocietyConfig(Strict):
    """A whole society file."""

    name: str
    description: str = ""
    organisation: str
    model: str | None = None
    answer: Literal["auto", "number", "choice", "text"] = "auto"
    budget: Budget = Field(default_factory=Budget)
    params: dict[str, Any] = Field(default_factory=dict)
    # options of the tools its agents use, by tool name: [tools.Search] path = "notes/"
    tools: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tool_limits: ToolLimits = Field(default_factory=ToolLimits)
    agents: list[AgentConfig] = Field(min_length=1)

    @field_validator("organisation")
    @classmethod
    def _known(cls, value: str) -> str:
        known = organisations()
        if value not in known:
            raise ValueError(f"unknown organisation {value!r}; expected one of {sorted(known)}")
        return value


@dataclass(frozen=True)
class AgentSpec:
    """A concrete member: one copy of an AgentConfig with its model (or society) resolved.

    For a member that is itself a society, `society` holds it (the runner checks that
    field); `model` then reads "society:NAME", a label for logs and listings only.
    """

    name: str
    role: str
    model: str
    options: Options
    group: str = "member"
    society: Society | None = None
    tools: tuple[str, ...] = ()
    agent: str = ""  # the society file's agent this copies (its own name when count is 1)


@dataclass(frozen=True)
class Society:
    """A validated society ready to run."""

    config: SocietyConfig
    organisation: Organisation
    params: BaseModel
    agents: list[AgentSpec]
    source: str
    tool_options: dict[str, BaseModel] = field(default_factory=dict)
    # members that ask a model in the whole tree (nested societies expanded, copies counted)
    size: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def answer_kind(self, question: str, requested: str | None = None) -> AnswerKind:
        """The kind of answer a run on `question` extracts: `requested` (a kind, or "auto"),
        else the society's own `answer`; "auto" is guessed from the question."""
        return answer_kind(requested or self.config.answer, question)

    def members(
        self, constrained: dict[str, bool], prefill: dict[str, bool] | None = None
    ) -> list[Member]:
        """The members as the organisation sees them; `constrained` maps model → grammar,
        `prefill` model → whether its backend continues a begun reply."""
        prefill = prefill or {}
        return [
            Member(a.name, a.role, a.options, constrained.get(a.model, False), a.group,
                   prefill.get(a.model, False), a.agent or a.name)
            for a in self.agents
        ]


def _expand(
    config: SocietyConfig, model_override: str | None, source: str, depth: int,
    loaded: dict[tuple[str, int], Society],
) -> tuple[list[AgentSpec], int]:
    """The society's members, copies made, and how many members of the whole tree ask a
    model; the tree is counted before any copy is made, and refused past its cap."""
    agents: list[AgentSpec] = []
    size = 0
    for k, agent in enumerate(config.agents):
        sub = None
        model = model_override or agent.model or config.model or default_model()
        if agent.society is not None:
            if depth >= MAX_DEPTH:
                raise MinskyError(
                    f"{source}: field 'agents.{k}.society': societies nest deeper than "
                    f"{MAX_DEPTH} levels (does one contain itself?)"
                )
            ref = _relative(agent.society, source)
            # one file named by many members is read once a level: the tree is counted,
            # not walked
            if (ref, depth) not in loaded:
                loaded[ref, depth] = _load(ref, model_override, depth + 1, loaded)
            sub = loaded[ref, depth]
            model = f"society:{sub.name}"
        size += agent.count * (sub.size if sub is not None else 1)
        if size > MAX_TREE_MEMBERS:
            raise MinskyError(
                f"{source}: field 'agents.{k}': its societies nest more than "
                f"{MAX_TREE_MEMBERS:,} members in all (copies and nested societies "
                f"counted); a tree of societies has at most {MAX_TREE_MEMBERS:,}")
        for i in range(agent.count):
            options = agent.options
            name = agent.name
            if agent.count > 1:
                name = f"{agent.name}-{i + 1}"
                # copies must differ: give each its own seed, deterministically
                options = options.model_copy(update={"seed": (options.seed or 0) + i})
            agents.append(
                AgentSpec(name, agent.role, model, options, agent.group, sub, tuple(agent.tools),
                          agent.name)
            )
    return agents, size


def _relative(ref: str, source: str) -> str:
    """A sub-society reference: a built-in name, or a path relative to the parent file."""
    if ref in builtin_names() or source.startswith(("builtin:", "run ")):
        return ref
    path = Path(ref)
    return str(path if path.is_absolute() else Path(source).parent / path)


def from_dict(
    data: dict[str, Any], source: str, model: str | None = None, depth: int = 0,
    loaded: dict[tuple[str, int], Society] | None = None,
) -> Society:
    """Validate a parsed society file; errors name `source`, the field and what was expected.

    Validation is strict: TOML has real types, so `count = "3"` is a mistake to report,
    not a string to convert.
    """
    entries = data.get("agents")
    if isinstance(entries, list) and len(entries) > MAX_MEMBERS:  # before validating them all
        raise MinskyError(f"{source}: field 'agents': {len(entries)} entries; a society has "
                          f"at most {MAX_MEMBERS} members")
    try:
        config = SocietyConfig.model_validate(data, strict=True)
        org = organisations()[config.organisation]
        # a file a parameter names (a constitution) is relative to the society file
        base = None if source.startswith(("builtin:", "run ")) else Path(source).parent
        try:
            params = org.params.model_validate(config.params, strict=True,
                                               context={"base": base})
        except MinskyError as err:  # a file a parameter names: its own line, prefixed
            raise MinskyError(f"{source}: field 'params': {err}") from None
    except ValidationError as err:
        # the organisation's own parameters are the file's "params" table
        within = "" if err.title == SocietyConfig.__name__ else "params"
        raise MinskyError(error_line(err, source, within)) from None
    copies = sum(a.count for a in config.agents)
    if copies > MAX_MEMBERS:
        raise MinskyError(f"{source}: field 'agents': {copies} members (copies counted); "
                          f"a society has at most {MAX_MEMBERS}")
    agents, size = _expand(config, model, source, depth, {} if loaded is None else loaded)
    dupes = sorted(n for n, k in Counter(a.name for a in agents).items() if k > 1)
    if dupes:
        raise MinskyError(f"{source}: field 'agents': duplicate agent names {dupes}")
    _check_groups(org, agents, source)
    if org.check is not None and (wrong := org.check(params, [a.name for a in config.agents])):
        raise MinskyError(f"{source}: field 'params.{wrong[0]}': {wrong[1]}")
    return Society(config, org, params, agents, source, _tool_options(config, source), size)


def _tool_options(config: SocietyConfig, source: str) -> dict[str, BaseModel]:
    """Validate tool names and options; every tool an agent uses gets its options."""
    known = tool_types()
    used = {t: k for k, a in enumerate(config.agents) for t in a.tools}
    for name, k in used.items():
        if name not in known:
            raise MinskyError(
                f"{source}: field 'agents.{k}.tools': unknown tool {name!r}; "
                f"expected one of {sorted(known)}"
            )
    for name in config.tools:
        if name not in known:
            raise MinskyError(f"{source}: field 'tools.{name}': unknown tool {name!r}; "
                              f"expected one of {sorted(known)}")
    options: dict[str, BaseModel] = {}
    for name in sorted(set(used) | set(config.tools)):
        try:
            options[name] = known[name].options.model_validate(config.tools.get(name, {}),
                                                               strict=True)
        except ValidationError as err:
            raise MinskyError(error_line(err, source, f"tools.{name}")) from None
    return options


def _check_groups(org: Organisation, agents: list[AgentSpec], source: str) -> None:
    counts: dict[str, int] = {}
    for a in agents:
        if a.group not in org.groups:
            raise MinskyError(
                f"{source}: field 'agents' ({a.name}): group {a.group!r} has no part in "
                f"organisation {org.name!r}; expected one of {sorted(org.groups)}"
            )
        counts[a.group] = counts.get(a.group, 0) + 1
    for group, (low, high) in org.groups.items():
        n = counts.get(group, 0)
        if n < low or (high is not None and n > high):
            want = f"{low}" if low == high else f"{low} to {high if high is not None else 'any'}"
            raise MinskyError(
                f"{source}: field 'agents': organisation {org.name!r} needs {want} agent(s) "
                f"in group {group!r}, got {n}"
            )


def builtin_names() -> list[str]:
    """Names of the societies that ship with minsky."""
    root = files("minsky").joinpath("societies")
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


CONTESTANT_PREFIX = "openai:"


def contestant(ref: str) -> Society:
    """A served model as a contestant: `single`'s member, asked through `openai:[URL#]MODEL`.

    It is sent exactly what `single`'s member is sent (its role, the solve prompt, greedy,
    its token cap), and its reply is scored by the same answer extraction, so a model or
    a proxy behind an OpenAI-compatible server (optillm, vLLM, another machine) goes
    through the same results, statistics and plots as minsky's own societies. Its name is
    the model name; `--model` does not replace it.
    """
    from minsky.backends.openai import split_endpoint

    _, name = split_endpoint(ref[len(CONTESTANT_PREFIX):])
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:64]
    if not label[:1].isalpha():
        label = f"m-{label}"[:64]
    text = files("minsky").joinpath("societies", "single.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data.update(name=label, description=f"{name} behind an OpenAI-compatible server, asked "
                "as single's member")
    # what the server spends is its own business: only the wall clock bounds it
    data["budget"] = {"max_rounds": 2, "max_tokens": 10_000_000, "timeout_s": 3600.0}
    data["agents"][0]["model"] = ref
    return from_dict(data, f"society {ref!r}")


def load(ref: str, model: str | None = None, depth: int = 0) -> Society:
    """Load a built-in society by name, a society file by path, or a served model
    (`openai:[URL#]MODEL`, see `contestant`)."""
    return _load(ref, model, depth, {})


def _load(ref: str, model: str | None, depth: int,
          loaded: dict[tuple[str, int], Society]) -> Society:
    if ref.startswith(CONTESTANT_PREFIX) and not Path(ref).is_file():
        return contestant(ref)
    if ref in builtin_names():
        text = files("minsky").joinpath("societies", f"{ref}.toml").read_text(encoding="utf-8")
        source = f"builtin:{ref}"
    else:
        path = Path(ref)
        if not path.is_file():
            if path.suffix == ".toml" or len(path.parts) > 1:  # meant as a file, not a name
                why = "is a directory" if path.is_dir() else "file not found"
                raise MinskyError(f"society file {ref}: {why}")
            raise MinskyError(
                f"society {ref!r}: no such file and not a built-in ({', '.join(builtin_names())})"
            )
        source = str(path)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise MinskyError(f"{source}: {path.stat().st_size:,} bytes; a society file is at "
                              f"most {MAX_FILE_BYTES:,}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise MinskyError(f"{source}: not UTF-8 text (byte {err.start}); a society file "
                              "is TOML in UTF-8") from None
        except OSError as err:
            raise MinskyError(f"{source}: cannot read it ({err.strerror})") from None
    data = load_toml(text, source)
    return from_dict(data, source, model, depth, loaded)
