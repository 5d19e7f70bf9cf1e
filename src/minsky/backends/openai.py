"""A backend for any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, OpenAI).

Each request of a batch becomes one POST to `{base_url}/chat/completions`; the batch is sent
concurrently, bounded by a semaphore, and replies come back in input order. Transient
failures (transport errors, timeouts, 429 and 5xx gateway errors) are retried with
exponential backoff and full jitter, honouring `Retry-After`. A request that still fails is
reported in its reply (finish_reason "error"), never raised.

The server is not trusted: each attempt has a total deadline (`timeout_s`, not per read,
so a server that trickles bytes cannot hold it), a request and its retries together have
one (`deadline_s`), a reply body is read up to `max_reply_bytes` and no further, and
every field used is type-checked (`content` a string, token counts non-negative
integers) with text made valid UTF-8.

A model spec `openai:MODEL` reaches `$MINSKY_OPENAI_BASE_URL` (or OpenAI's);
`openai:URL#MODEL` names the server itself (`openai:http://127.0.0.1:8000/v1#qwen`), so
one command can compare models on several servers. `$MINSKY_OPENAI_TIMEOUT_S` lengthens
one attempt's deadline for servers that think long (a proxy running a search per request).

Left out on purpose: streaming, tool calls, logprobs, `n > 1` and provider-specific extras
other than llama.cpp's `grammar` field. The server is trusted to apply `json_schema` itself;
the caller validates the answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlparse

import httpx

from minsky.account import MAX_CALL_TOKENS
from minsky.backends.base import Backend, Capabilities
from minsky.errors import MinskyError
from minsky.inputs.safetext import valid
from minsky.messages import ChatReply, ChatRequest, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Rate limiting and gateway/overload errors are worth another try; other 4xx mean the
# request itself is wrong and would fail again.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SNIPPET_CHARS = 200
# far above any real reply (32768 tokens of text and logprobs), far below harm to memory
MAX_REPLY_BYTES = 16 * 1024 * 1024
TIMEOUT_ENV = "MINSKY_OPENAI_TIMEOUT_S"
MAX_TIMEOUT_S = 24 * 3600.0


def _snippet(text: str) -> str:
    """One line of at most _SNIPPET_CHARS characters, so errors stay readable in logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT; be lenient with naive ones
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Retryable(Exception):
    """A failure worth retrying; `wait_s` is the server's Retry-After, if it gave one."""

    def __init__(self, message: str, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class _Fatal(Exception):
    """A failure that another attempt would not fix."""


class _Inflater:
    """Decodes a body of one content encoding, never more than `room` bytes at a time.

    httpx decodes what it reads whole: a few hundred bytes gzip-encoded three times
    inflate to a gigabyte inside one `decode` call, before any cap can count them. Here
    each step inflates at most the room left under the cap, so the cap counts decoded
    bytes as they come.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = {"identity": 0, "gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
                 "deflate": zlib.MAX_WBITS}[encoding]
        self._zlib = zlib.decompressobj(wbits) if wbits else None
        self._first = True

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        """The bytes `data` decodes to, in pieces of at most `room` + 1 bytes (one over
        is enough to know the cap is passed)."""
        if self._zlib is None:
            yield data
            return
        while data:
            try:
                piece = self._zlib.decompress(data, room + 1)
            except zlib.error:
                if not (self._first and self.encoding == "deflate"):
                    raise
                # subtle: "deflate" is meant with a zlib header, but servers send it raw
                # too (as httpx accepts)
                self._zlib, self._first = zlib.decompressobj(-zlib.MAX_WBITS), False
                continue
            self._first = False
            yield piece
            tail = self._zlib.unconsumed_tail
            # data after the end (a second gzip member) is ignored, as httpx does
            if self._zlib.eof or (not piece and tail == data):
                return
            data = tail


def _encoding(response: httpx.Response, url: str) -> str:
    """The one content encoding of a reply ("identity" for none); stacked or unknown
    encodings are refused before anything is read."""
    named = [e.strip().lower() for e in
             response.headers.get_list("content-encoding", split_commas=True)]
    named = [e for e in named if e and e != "identity"]
    if len(named) > 1:
        raise _Fatal(f"reply from {url} has stacked content encodings "
                     f"({', '.join(named)}); expected at most one")
    encoding = named[0] if named else "identity"
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise _Fatal(f"reply from {url} has content encoding {encoding!r}; expected gzip, "
                     "deflate or none")
    return encoding


async def _read_capped(response: httpx.Response, limit: int, url: str) -> bytes:
    """The body of a streamed response, decoded, refusing one longer than `limit` bytes
    as sent or as decoded, and one with more than one content encoding."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Fatal(f"reply from {url} is {int(declared):,} bytes, over the {limit:,} limit")
    inflater = _Inflater(_encoding(response, url))
    chunks: list[bytes] = []
    sent = size = 0
    try:
        # raw bytes, decoded here: httpx's own decoding is unbounded (see _Inflater)
        async for raw in response.aiter_raw():
            sent += len(raw)
            if sent > limit:
                raise _Fatal(f"reply from {url} is over the {limit:,}-byte limit (stopped "
                             "reading)")
            for piece in inflater.decode(raw, limit - size):
                size += len(piece)
                if size > limit:
                    raise _Fatal(f"reply from {url} decodes to over the {limit:,}-byte limit "
                                 f"({inflater.encoding}; stopped decoding)")
                chunks.append(piece)
    except zlib.error as exc:
        raise _Fatal(f"reply from {url} is not valid {inflater.encoding}: {exc}") from None
    return b"".join(chunks)


def _count(value: Any, name: str) -> int:
    """A token count from a reply: a non-negative integer (missing or null counts as 0),
    at most `MAX_CALL_TOKENS`; the runner counts a nought for a text that is there, or
    the cap, as an estimate and flags it (`minsky.account.counted`)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise TypeError(f"usage {name} is {value!r}, expected a number")
    # subtle: 1e19 or inf would overflow the log's integers (or int() itself); no call
    # generates more than the cap, so a count beyond it is clamped, not believed
    if value > MAX_CALL_TOKENS:
        return MAX_CALL_TOKENS
    # a negative count would switch the token budget off; a server may not do that
    return max(0, int(value))


def split_endpoint(spec: str) -> tuple[str | None, str]:
    """Split what follows `openai:` into (base URL or None, model name).

    `URL#MODEL` names the server; a plain `MODEL` leaves it to the environment.
    """
    if "#" not in spec:
        if not spec.strip():
            raise MinskyError("model 'openai:': give a model name (openai:MODEL or "
                              "openai:URL#MODEL)")
        return None, spec
    url, _, model = spec.partition("#")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MinskyError(f"model 'openai:{spec}': {url!r} is not an http(s) URL; expected "
                          "openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#qwen")
    if not model.strip():
        raise MinskyError(f"model 'openai:{spec}': no model name after '#'; expected "
                          "openai:URL#MODEL")
    return url, model


def timeout_from_env(default: float = 120.0) -> float:
    """One attempt's deadline: `$MINSKY_OPENAI_TIMEOUT_S`, else `default`."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT_S:
        raise MinskyError(f"${TIMEOUT_ENV}={raw!r}: expected seconds, more than 0 and at "
                          f"most {MAX_TIMEOUT_S:.0f}")
    return value


class OpenAIBackend(Backend):
    """Chat completions over HTTP against an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        grammar_field: bool = False,
        deadline_s: float = 180.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        for label, value in (("timeout_s", timeout_s), ("deadline_s", deadline_s)):
            if not 0 < value < float("inf"):
                raise ValueError(f"{label} must be a positive, finite number of seconds")
        self.model = model
        self.base_url = (
            base_url
            or os.environ.get("MINSKY_OPENAI_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/")
        self.api_key = (
            api_key or os.environ.get("MINSKY_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        self.concurrency = concurrency
        self.timeout_s = timeout_s  # one attempt, all of it: connect, send, every byte back
        self.deadline_s = deadline_s  # a request and all its retries
        self.max_reply_bytes = max_reply_bytes
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.grammar_field = grammar_field
        # Only llama.cpp's server understands a top-level `grammar`; elsewhere it is ignored
        # or rejected, so the flag must be opted into.
        self.capabilities = Capabilities(grammar=grammar_field, json_schema=True)
        # Injectable so tests can record backoff waits instead of sleeping.
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self._rng = random.Random()
        # Created lazily: both bind to the running event loop, which does not exist yet.
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    async def aclose(self) -> None:
        client, self._client, self._semaphore = self._client, None, None
        # A client from an earlier (now closed) loop cannot be closed from this one; its
        # sockets went with that loop.
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is not loop:
            # Sync callers may use asyncio.run per batch; the old client's connections belong
            # to a closed loop, so start over rather than fail.
            self._client = None
        if self._client is None:
            self._loop = loop
            headers = {"Content-Type": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self.timeout_s),
                # Enough pooled connections that the semaphore, not the pool, is the limit.
                limits=httpx.Limits(max_connections=self.concurrency),
            )
            # One semaphore per backend, so concurrent batches share the bound too.
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._client

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        self._get_client()
        return list(await asyncio.gather(*(self._complete_one(r) for r in requests)))

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        opts = request.options
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "max_tokens": opts.max_tokens,
        }
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.stop:
            body["stop"] = list(opts.stop)
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        # Without grammar_field the grammar is dropped; callers consult capabilities first.
        if request.grammar is not None and self.grammar_field:
            body["grammar"] = request.grammar
        return body

    def _backoff(self, attempt: int, wait_s: float | None) -> float:
        if wait_s is not None:
            return min(self.max_backoff_s, wait_s)
        # Full jitter spreads retries from many clients instead of synchronising them.
        return self._rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))

    async def _complete_one(self, request: ChatRequest) -> ChatReply:
        assert self._semaphore is not None
        body = self._body(request)
        start = time.perf_counter()
        # Held across retries: backing off while still holding a slot keeps a rate-limited
        # server from being hit by fresh requests meanwhile.
        async with self._semaphore:
            # from here, not from `start`: waiting for a slot behind a large batch is not
            # the server failing to answer
            deadline = time.perf_counter() + self.deadline_s
            attempt = 0
            while True:
                try:
                    reply = await self._post(body, deadline)
                except _Retryable as exc:
                    wait = self._backoff(attempt, exc.wait_s)
                    left = deadline - time.perf_counter()
                    if attempt >= self.max_retries or left <= wait:
                        why = (f"{exc} (after {attempt + 1} attempts"
                               + ("" if attempt >= self.max_retries else
                                  f"; no time left of its {self.deadline_s:g} s deadline")
                               + ")")
                        return self._error(why, start)
                    await self._sleep(wait)
                    attempt += 1
                    continue
                except _Fatal as exc:
                    return self._error(str(exc), start)
                except Exception as exc:  # noqa: BLE001 - one odd reply must not lose the batch
                    return self._error(f"{type(exc).__name__}: {_snippet(str(exc))}", start)
                reply.latency_s = time.perf_counter() - start
                return reply

    def _error(self, message: str, start: float) -> ChatReply:
        latency_s = time.perf_counter() - start
        return ChatReply(text="", finish_reason="error", error=message, latency_s=latency_s)

    async def _post(self, body: dict[str, Any], deadline: float) -> ChatReply:
        url = f"{self.base_url}/chat/completions"
        client = self._get_client()
        limit_s = max(0.001, min(self.timeout_s, deadline - time.perf_counter()))
        try:
            # subtle: httpx's own timeout is per read, so a server sending a byte every few
            # seconds never trips it; this bounds the whole attempt
            async with asyncio.timeout(limit_s):
                async with client.stream("POST", url, json=body) as response:
                    raw = await _read_capped(response, self.max_reply_bytes, url)
        except TimeoutError:
            raise _Retryable(f"no complete reply from {url} within {limit_s:.3g} s") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # another try cannot help
            raise _Fatal(f"invalid URL {url}: {_snippet(str(exc))}") from exc
        except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
            raise _Retryable(f"{type(exc).__name__} from {url}: {_snippet(str(exc))}") from exc
        except httpx.HTTPError as exc:  # e.g. a malformed URL: retrying cannot help
            raise _Fatal(f"{type(exc).__name__} for {url}: {_snippet(str(exc))}") from exc
        if response.status_code != 200:
            text = raw.decode("utf-8", "replace")
            message = f"HTTP {response.status_code} from {url}: {_snippet(text)}"
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(message, _retry_after(response.headers.get("Retry-After")))
            raise _Fatal(message)
        return self._parse(raw, url)

    @staticmethod
    def _parse(raw: bytes, url: str) -> ChatReply:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"].get("content")
            if content is None:
                content = ""
            if not isinstance(content, str):
                raise TypeError(f"content is {type(content).__name__}, expected a string")
            # Servers differ in what they report; anything missing counts as zero.
            usage = data.get("usage") or {}
            details = usage.get("prompt_tokens_details") or {}
            counts = Usage(
                prompt_tokens=_count(usage.get("prompt_tokens"), "prompt_tokens"),
                completion_tokens=_count(usage.get("completion_tokens"), "completion_tokens"),
                cached_tokens=_count(details.get("cached_tokens"), "cached_tokens"),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError,
                OverflowError) as exc:
            detail = f"{exc}; " if isinstance(exc, TypeError) else ""
            raise _Fatal(
                f"malformed response from {url} ({type(exc).__name__}): {detail}"
                f"{_snippet(valid(raw[:4096].decode('utf-8', 'replace')))}"
            ) from exc
        # "stop", "eos", "tool_calls", "content_filter", None... only truncation matters here.
        finish: Literal["stop", "length"] = (
            "length" if choice.get("finish_reason") == "length" else "stop"
        )
        return ChatReply(text=valid(content), finish_reason=finish, usage=counts)
