"""Wire types shared by organisations, the runner and backends.

Plain dataclasses, one concept each: a chat `Message`, the `Options` for sampling, a
`ChatRequest` (what one agent is asked) and its `ChatReply`. Backends receive lists of
requests and return replies in the same order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import Field

from minsky.strict import Strict

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


class Options(Strict):
    """Sampling options of one agent; unknown keys are rejected so typos fail loudly."""

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    # local backends only; keeps sampling cheap on 150k-token vocabularies (0 = off)
    top_k: int = Field(40, ge=0)
    # local backends only: drop tokens less likely than min_p × the likeliest (0 = off)
    min_p: float = Field(0.0, ge=0.0, lt=1.0)
    # local backends only: divide the logits of tokens seen in the last 64 (1 = off)
    repeat_penalty: float = Field(1.0, ge=1.0, le=2.0)
    max_tokens: int = Field(256, ge=1, le=32768)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    # return each generated token's log-probability (the reply's confidence signal)
    logprobs: bool = False
    # return the likeliest alternatives at each generated position (for scoring options)
    top_logprobs: int = Field(0, ge=0, le=20)


# options added after runs were first logged: left out of a request's record while at
# their defaults, so a request's hash (how a resumed run finds its logged reply) is the
# same as before they existed
_LATER_OPTIONS = {"min_p": 0.0, "repeat_penalty": 1.0, "logprobs": False, "top_logprobs": 0}


def _options_dict(options: Options) -> dict[str, Any]:
    data = options.model_dump()
    for key, default in _LATER_OPTIONS.items():
        if data[key] == default:
            del data[key]
    return data


@dataclass
class ChatRequest:
    """What one agent is asked: its messages, sampling options and an optional constraint.

    `grammar` is a GBNF grammar and `json_schema` a JSON schema; a backend that cannot
    honour a constraint says so through its capability flags and the caller falls back to
    extraction from free text.
    """

    messages: list[Message]
    options: Options = field(default_factory=Options)
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    # text the assistant's reply already starts with: generation continues after it
    # (how a tool result is inserted mid-generation); needs Capabilities.prefill
    prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": [asdict(m) for m in self.messages],
            "options": _options_dict(self.options),
            "grammar": self.grammar,
            "json_schema": self.json_schema,
            "prefix": self.prefix,
        }


@dataclass
class Usage:
    """Token counts of one call; `cached_tokens` is the part of the prompt reused from cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ChatReply:
    """A backend's answer to one request.

    `finish_reason` is "stop" (end of turn or a stop string), "length" (max_tokens) or
    "error" (the call failed; `error` says why and `text` is empty).
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: Literal["stop", "length", "error"] = "stop"
    error: str | None = None
    stop: str | None = None  # the stop string that ended generation, if one did
    # natural-log probability of each generated token under the model (Options.logprobs)
    logprobs: list[float] | None = None
    # per generated position: the likeliest tokens' text → log-probability
    top_logprobs: list[dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "usage": asdict(self.usage),
            "latency_s": self.latency_s,
            "finish_reason": self.finish_reason,
            "error": self.error,
            "stop": self.stop,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
        }
