"""The OpenAI chat-completions wire format, as far as `minsky serve` speaks it.

Request bodies are pydantic models that refuse unknown keys; fields OpenAI defines but a
society cannot honour (tools, logprobs, response formats, penalties, ...) are refused by
name when set to anything but their neutral value. The sampler fields llama-server and
society files accept beyond OpenAI's (`top_k`, `min_p`, `repeat_penalty`) are taken, with
the bounds a society file has. Responses, stream chunks and errors are plain dicts in
OpenAI's shapes, with minsky's own data fenced off under a `minsky` key.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Literal

from pydantic import Field, ValidationError

from minsky.answers import extract_answer, tally_votes
from minsky.errors import MinskyError
from minsky.inputs.limits import MAX_NESTING, check_depth
from minsky.messages import Usage
from minsky.runner import RunResult
from minsky.strict import Strict


class ApiError(Exception):
    """An error answered in OpenAI's envelope: `{"error": {message, type, param, code}}`."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class TextPart(Strict):
    """A text part of a message's content (the only kind a society reads)."""

    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    """One message of the conversation."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # sent by newer clients; nothing to obfuscate


class ChatCompletionRequest(Strict):
    """A `POST /v1/chat/completions` body; fields in the order of OpenAI's reference."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    model: str
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    metadata: dict[str, str] | None = None
    n: int = Field(1, ge=1, le=16)
    seed: int | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    user: str | None = None
    # not OpenAI's: llama-server's sampler fields, which a society file's options also have
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, lt=1.0)
    repeat_penalty: float | None = Field(None, ge=1.0, le=2.0)

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampler fields the client set, as member options."""
        names = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def token_cap(self) -> int | None:
        """The cap on the society's token budget (`max_completion_tokens` wins)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]


# fields OpenAI defines that a society cannot honour, with the values that ask for nothing
# (clients send some of them at their defaults); anything else is refused by name
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []),
    "function_call": (None, "none"), "parallel_tool_calls": (None, True, False),
    "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None, {}),
    "response_format": (None, {"type": "text"}), "audio": (None,),
    "modalities": (None, ["text"]), "prediction": (None,),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
    "reasoning_effort": (None,), "service_tier": (None, "auto", "default"),
    "web_search_options": (None,), "verbosity": (None,),
}


def parse_request(raw: bytes) -> ChatCompletionRequest:
    """Validate a request body; any problem is a 400 naming the field."""
    try:
        data = json.loads(raw)
        # deep nesting fails late (in pydantic, in the log) or, deeper, in json itself
        check_depth(data, MAX_NESTING, "request body")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, f"request body: nested more than {MAX_NESTING} levels deep; at "
                            f"most {MAX_NESTING}", code="invalid_value") from None
    except MinskyError as err:
        raise ApiError(400, str(err), code="invalid_value") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    for name, neutral in UNSUPPORTED.items():
        if name in data:
            value = data.pop(name)
            if not any(value == ok and type(value) is type(ok) for ok in neutral):
                raise ApiError(400, f"'{name}' is not supported by minsky serve (a society "
                                    f"answers in plain text)", param=name,
                               code="unsupported_parameter")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        # the deepest error: for a union (content: text or parts) the branch that got
        # furthest says what is wrong ("messages[0].content[0].type"), not "a string"
        first = max(err.errors(), key=lambda e: len(e["loc"]) - _tags(e["loc"]))
        param = _param(first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ApiError(400, f"'{param}': {message}", param=param,
                       code="invalid_value") from None


def _tags(loc: tuple[Any, ...]) -> int:
    """How many parts of a location name a union's branch rather than a field."""
    return sum(1 for p in loc if p == "str" or str(p).startswith("list["))


def _param(loc: tuple[Any, ...]) -> str:
    """A pydantic location as OpenAI writes a parameter: `messages[2].role`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "str" or str(part).startswith("list["):
            continue  # which branch of a union failed: not part of the parameter's name
        else:
            out += f".{part}" if out else str(part)
    return out


FinishReason = Literal["stop", "length"]


def finish_reason(result: RunResult) -> FinishReason:
    """A run stopped by any budget (tokens, rounds, time) reads as a length stop."""
    return "stop" if result.status == "ok" else "length"


def content(result: RunResult, stops: list[str]) -> str:
    """The assistant message: the society's answer (else its deciding reply; for a run a
    budget stopped, the leading answer so far), cut at the first stop string the client
    gave."""
    text = result.outcome.answer
    if text is None:
        text = result.outcome.text or leading(result)
    cuts = [text.index(s) for s in stops if s in text]
    return text[: min(cuts)] if cuts else text


def leading(result: RunResult) -> str:
    """What a run that stopped before deciding had so far: the answer most of its members'
    last replies give (the first given, on a tie), else the first non-empty reply; ''
    only when nothing was said."""
    members = result.outcome.members
    found = [m.answer if m.answer is not None else extract_answer(m.text, result.kind)
             for m in members]
    winner = tally_votes(found, result.kind).winner
    if winner is not None:
        return winner
    return next((m.text for m in members if m.text.strip()), "")


def extension(result: RunResult) -> dict[str, Any]:
    """What minsky adds to a choice: the run, its decision and who said what."""
    return {
        "run_id": result.run_id,
        "society": result.society,
        "status": result.status,
        "answer": result.outcome.answer,
        "tally": result.outcome.tally,
        "members": [asdict(m) for m in result.outcome.members],
        "wall_s": round(result.wall_s, 3),
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def total_usage(results: list[RunResult]) -> Usage:
    total = Usage()
    for r in results:
        total = total + r.usage
    return total


def completion(cid: str, created: int, model: str, results: list[RunResult],
               stops: list[str]) -> dict[str, Any]:
    """A whole `chat.completion` object, one choice per run."""
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": content(r, stops)},
            "logprobs": None,
            "finish_reason": finish_reason(r),
            "minsky": extension(r),
        }
        for i, r in enumerate(results)
    ]
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": choices, "usage": usage_body(total_usage(results)),
        "minsky": extension(results[0]),
    }


def chunk(cid: str, created: int, model: str, choices: list[dict[str, Any]],
          **extra: Any) -> str:
    """One server-sent event carrying a `chat.completion.chunk`."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def delta(index: int, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}
