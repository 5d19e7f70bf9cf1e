"""The HTTP application: societies served as OpenAI chat-completion models (FastAPI).

Routes: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/chat/completions` (plain or
streamed as server-sent events) and `GET /health`. Every request shares one set of
backends, so the members of all runs in flight decode in the same batches; admission is
bounded (`Slots`), bodies are bounded, and a client that goes away cancels its runs.

A stream carries, in order: the assistant role; the run's progress as `reasoning_content`
deltas (each round as it starts, each member's reply as it lands), with `: keep-alive`
comments while nothing happens; the answer as `content`; a finish chunk per choice with
its `minsky` extension; a usage chunk (`choices: []`) if `stream_options.include_usage`;
then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from ulid import ULID

from minsky.answers import AnswerKind
from minsky.otel import incoming
from minsky.runner import Runner, RunResult
from minsky.serve.adapter import Progress, run_society
from minsky.serve.cards import society_card
from minsky.serve.choices import for_choice
from minsky.serve.conversation import Conversation
from minsky.serve.protocol import (
    ApiError,
    ChatCompletionRequest,
    chunk,
    completion,
    content,
    delta,
    error_body,
    extension,
    finish_reason,
    parse_request,
    total_usage,
    usage_body,
)
from minsky.serve.slots import Full, Slots
from minsky.society import Society
from minsky.strict import Strict

KINDS = ("auto", "number", "choice", "text")


class ServeSettings(Strict):
    """The server's limits and key."""

    api_key: str | None = None
    max_concurrent: int = Field(16, ge=1, le=4096, description="society runs in flight")
    max_queue: int = Field(64, ge=0, description="requests waiting for a slot")
    queue_wait_s: float = Field(60.0, gt=0, description="longest wait for a slot")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body")
    keepalive_s: float = Field(10.0, gt=0, description="stream idle time before a comment")


Events = asyncio.Queue[tuple[int, Progress] | None]


class Served:
    """The societies, the shared runner and the limits behind one application."""

    def __init__(self, societies: dict[str, Society], runner: Runner,
                 settings: ServeSettings) -> None:
        self.societies = societies
        self.runner = runner
        self.settings = settings
        self.slots = Slots(settings.max_concurrent, settings.max_queue, settings.queue_wait_s)
        self.created = int(time.time())

    def check_key(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                  key.encode()):
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                           code="invalid_api_key")

    def society(self, name: str) -> Society:
        if name not in self.societies:
            raise ApiError(404, f"'model': no society {name!r} is served here; expected one of "
                                f"{sorted(self.societies)}", param="model",
                           code="model_not_found")
        return self.societies[name]

    def model_card(self, name: str) -> dict[str, Any]:
        soc = self.societies[name]
        return {
            "id": name, "object": "model", "created": self.created, "owned_by": "minsky",
            "minsky": society_card(soc),
        }

    async def run_all(self, societies: list[Society], conversation: Conversation,
                      kind: AnswerKind | None, events: Events) -> list[RunResult]:
        """Run one society per choice, concurrently; always frees the slots taken for them
        and ends the event stream."""
        start = time.perf_counter()
        try:
            tasks = [
                asyncio.create_task(run_society(
                    self.runner, soc, conversation, kind,
                    lambda p, i=i: events.put_nowait((i, p))))  # type: ignore[misc]
                for i, soc in enumerate(societies)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            except Exception:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            self.slots.release(len(societies), time.perf_counter() - start)
            events.put_nowait(None)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes."""
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"request body larger than {limit} bytes", code="body_too_large")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    try:
        async for part in request.stream():
            body.extend(part)
            if len(body) > limit:
                raise too_big
    except ClientDisconnect:  # gone, or cut off for sending too slowly: not a server error
        raise ApiError(408, "the request body did not arrive", code="request_timeout") \
            from None
    return bytes(body)


def answer_kind(request: ChatCompletionRequest) -> AnswerKind | None:
    """The answer kind from `metadata.answer` (else the society's own setting)."""
    kind = (request.metadata or {}).get("answer", "auto")
    if kind not in KINDS:
        raise ApiError(400, f"'metadata.answer': expected one of {list(KINDS)}, got {kind!r}",
                       param="metadata.answer", code="invalid_value")
    return None if kind == "auto" else cast(AnswerKind, kind)  # one of KINDS


def failure(results: list[RunResult]) -> ApiError | None:
    """A 500 for runs that failed (a backend error, not a budget stop)."""
    failed = [r for r in results if r.status == "error"]
    if not failed:
        return None
    r = failed[0]
    return ApiError(500, f"society {r.society} run {r.run_id} failed: {r.error}",
                    kind="server_error", code="run_failed")


def progress_text(p: Progress) -> str:
    """One line (or paragraph) of the reasoning shown while the society works."""
    if p.kind == "round":
        return f"[{p.text}]\n"
    who = f"{p.agent} (in a sub-society)" if p.nested else p.agent
    return f"{who} · {p.purpose}: {p.text.strip()}\n\n"


def create_app(societies: dict[str, Society], runner: Runner,
               settings: ServeSettings | None = None) -> FastAPI:
    """The application serving `societies` on `runner`'s backends and log."""
    served = Served(societies, runner, settings or ServeSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await runner.backends.aclose()

    app = FastAPI(title="minsky serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.served = served

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # the router's own errors (no such route, a method a route lacks) in the same
        # envelope as every other error, not FastAPI's {"detail": ...}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        body = error_body(f"{exc.detail}: {request.method} {request.url.path}", code=code)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "in_flight": served.slots.in_use,
                "waiting": served.slots.waiting}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        served.check_key(request)
        return {"object": "list", "data": [served.model_card(n) for n in served.societies]}

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request) -> dict[str, Any]:
        served.check_key(request)
        served.society(name)
        return served.model_card(name)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        served.check_key(request)
        req = parse_request(await read_body(request, served.settings.max_body_bytes))
        society = served.society(req.model)
        conversation = Conversation.from_messages(req.messages)
        kind = answer_kind(req)
        if req.n > served.slots.limit:
            raise ApiError(400, f"'n': at most {served.slots.limit} choices on this server "
                                f"(--max-concurrent), got {req.n}", param="n",
                           code="invalid_value")
        plans = [for_choice(society, req, i) for i in range(req.n)]
        try:
            await served.slots.acquire(req.n)
        except Full as full:
            raise ApiError(429, str(full), kind="rate_limit_error", code="rate_limit_exceeded",
                           headers={"Retry-After": str(full.retry_after_s)}) from None
        events: Events = asyncio.Queue()
        # with tracing on, the runs continue the client's trace (its `traceparent`)
        job = asyncio.create_task(served.run_all(plans, conversation, kind, events),
                                  context=incoming(request.headers))
        cid, created = f"chatcmpl-{ULID()}", int(time.time())
        if req.stream:
            return StreamingResponse(
                _stream(request, served, req, job, events, cid, created),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        results = await _wait(request, job, served.settings.keepalive_s)
        if results is None:
            return Response(status_code=499)  # nobody is listening any more
        error = failure(results)
        if error:
            raise error
        return JSONResponse(completion(cid, created, req.model, results, req.stops))

    return app


async def _wait(request: Request, job: asyncio.Task[list[RunResult]],
                poll_s: float) -> list[RunResult] | None:
    """The job's results, or None (the job cancelled) once the client has gone away."""
    try:
        while True:
            done, _ = await asyncio.wait({job}, timeout=min(poll_s, 1.0))
            if done:
                try:
                    return job.result()
                except Exception as exc:
                    raise ApiError(500, f"{type(exc).__name__}: {exc}", kind="server_error",
                                   code="run_failed") from exc
            if await request.is_disconnected():
                job.cancel()
                return None
    except asyncio.CancelledError:
        job.cancel()
        raise


async def _stream(request: Request, served: Served, req: ChatCompletionRequest,
                  job: asyncio.Task[list[RunResult]], events: Events, cid: str,
                  created: int) -> AsyncIterator[str]:
    """The server-sent events of one streamed completion (see the module docstring)."""
    model = req.model
    try:
        for i in range(req.n):
            yield chunk(cid, created, model, [delta(i, role="assistant", content="")])
        while True:
            try:
                item = await asyncio.wait_for(events.get(), served.settings.keepalive_s)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if item is None:
                break
            i, p = item
            yield chunk(cid, created, model, [delta(i, reasoning_content=progress_text(p))])
        try:
            results = job.result()
            error = failure(results)
        except Exception as exc:  # noqa: BLE001 - reported to the client, in its format
            error = ApiError(500, f"{type(exc).__name__}: {exc}", kind="server_error",
                             code="run_failed")
        if error:
            body = error_body(error.message, error.kind, None, error.code)
            yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            return
        for i, r in enumerate(results):
            yield chunk(cid, created, model, [delta(i, content=content(r, req.stops))])
            yield chunk(cid, created, model, [delta(i, finish_reason(r))], minsky=extension(r))
        if req.stream_options and req.stream_options.include_usage:
            yield chunk(cid, created, model, [], usage=usage_body(total_usage(results)))
        yield "data: [DONE]\n\n"
    finally:
        # the client went away (or the stream ended early): stop the runs and free their
        # slots; the runner logs them `interrupted`
        if not job.done():
            job.cancel()
