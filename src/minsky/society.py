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

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from minsky.errors import MinskyError
from minsky.messages import Options
from minsky.models import default_model
from minsky.organisations.base import Member, Organisation
from minsky.plugins import organisations

DEFAULT_ROLE = "You are a helpful, careful assistant. You reason step by step."


class Budget(BaseModel):
    """Limits a run cannot exceed; hitting one stops the run with a status in the log."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int = Field(8, ge=1, le=1000)
    max_tokens: int = Field(100_000, ge=1)
    timeout_s: float = Field(1800.0, gt=0)


class AgentConfig(BaseModel):
    """One agent (or `count` copies of it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)
    role: str = DEFAULT_ROLE
    model: str | None = None
    count: int = Field(1, ge=1, le=64)
    options: Options = Field(default_factory=Options)


class SocietyConfig(BaseModel):
    """A whole society file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    organisation: str
    model: str | None = None
    answer: Literal["auto", "number", "choice", "text"] = "auto"
    budget: Budget = Field(default_factory=Budget)
    params: dict[str, Any] = Field(default_factory=dict)
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
    """A concrete member: one copy of an AgentConfig with its model resolved."""

    name: str
    role: str
    model: str
    options: Options


@dataclass(frozen=True)
class Society:
    """A validated society ready to run."""

    config: SocietyConfig
    organisation: Organisation
    params: BaseModel
    agents: list[AgentSpec]
    source: str

    @property
    def name(self) -> str:
        return self.config.name

    def members(self, constrained: dict[str, bool]) -> list[Member]:
        """The members as the organisation sees them; `constrained` maps model → grammar."""
        return [Member(a.name, a.role, a.options, constrained[a.model]) for a in self.agents]


def _expand(config: SocietyConfig, model_override: str | None) -> list[AgentSpec]:
    agents: list[AgentSpec] = []
    for agent in config.agents:
        model = model_override or agent.model or config.model or default_model()
        for i in range(agent.count):
            options = agent.options
            name = agent.name
            if agent.count > 1:
                name = f"{agent.name}-{i + 1}"
                # copies must differ: give each its own seed, deterministically
                options = options.model_copy(update={"seed": (options.seed or 0) + i})
            agents.append(AgentSpec(name, agent.role, model, options))
    return agents


def _format_error(source: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] not in ("missing", "extra_forbidden", "value_error"):
            msg += f" (got {e['input']!r})"
        parts.append(f"field '{field}': {msg}")
    return f"{source}: " + "; ".join(parts)


def from_dict(data: dict[str, Any], source: str, model: str | None = None) -> Society:
    """Validate a parsed society file; errors name `source`, the field and what was expected."""
    try:
        config = SocietyConfig.model_validate(data)
        org = organisations()[config.organisation]
        params = org.params.model_validate(config.params)
    except ValidationError as err:
        if err.title != SocietyConfig.__name__:
            # the organisation's own parameters: prefix their fields with "params."
            raise MinskyError(_format_error(source, err).replace("field '", "field 'params.")) from None
        raise MinskyError(_format_error(source, err)) from None
    agents = _expand(config, model)
    names = [a.name for a in agents]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MinskyError(f"{source}: field 'agents': duplicate agent names {dupes}")
    if org.max_members is not None and len(agents) > org.max_members:
        raise MinskyError(
            f"{source}: field 'agents': organisation {org.name!r} takes at most "
            f"{org.max_members} agent(s), got {len(agents)}"
        )
    return Society(config, org, params, agents, source)


def builtin_names() -> list[str]:
    """Names of the societies that ship with minsky."""
    root = files("minsky").joinpath("societies")
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def load(ref: str, model: str | None = None) -> Society:
    """Load a built-in society by name or a society file by path."""
    if ref in builtin_names():
        text = files("minsky").joinpath("societies", f"{ref}.toml").read_text(encoding="utf-8")
        source = f"builtin:{ref}"
    else:
        path = Path(ref)
        if not path.is_file():
            raise MinskyError(
                f"society {ref!r}: no such file and not a built-in ({', '.join(builtin_names())})"
            )
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise MinskyError(f"{source}: not valid TOML: {err}") from None
    return from_dict(data, source, model)
