"""The embedded backend: llama.cpp in this process, all agents decoded as parallel sequences.

llama-cpp-python's high-level `Llama` object runs one request at a time, so a society of
five would take five times as long. Instead we drive llama.cpp's low-level API ourselves:
one context with `n_parallel` sequence slots and a unified KV cache; every step builds one
`llama_batch` holding the next token of every generating sequence plus prompt tokens of
newly admitted ones (continuous batching, as llama-server does). One worker thread owns the
context; `complete` only enqueues requests and awaits their futures, so concurrent callers
(several sub-societies at once) share the same batches.

Prompt prefixes are reused: each slot remembers the tokens whose KV it holds, a new request
takes the slot (or copies the prefix of another slot) that shares the longest prefix with
its prompt, and only the rest is decoded. Five voters with one prompt pay for it once; a
member asked again in the next round pays only for the new turn.

A LoRA adapter applies to every sequence (`minsky.backends.lora`). Left out: speculative
decoding and multimodal input.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minsky.backends.base import Backend, Capabilities, Scored, check_real_model
from minsky.backends.lora import attach, detach, note_log
from minsky.backends.scoring import ScoreJob, ScoringEngine, logit_rows
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Message, Usage

if TYPE_CHECKING:
    from jinja2 import Template

# A copy of the prefix is worth a step's wait only when it saves a real amount of decoding.
_MIN_SHARED_PREFIX = 16
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class _Job:
    request: ChatRequest
    future: asyncio.Future[ChatReply]
    loop: asyncio.AbstractEventLoop
    started: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    cancelled: bool = False  # set by the caller's thread; the worker drops the job


@dataclass
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    job: _Job | None = None
    sampler: Any = None
    prefill: list[int] = field(default_factory=list)  # prompt tokens still to decode
    pending: int | None = None  # sampled token not yet decoded
    out: bytearray = field(default_factory=bytearray)
    n_generated: int = 0
    n_cached_prompt: int = 0
    i_batch: int = -1
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)


_LOG_SINK: Any = None


def _silence_llama_logs(ll: Any) -> None:
    """Drop llama.cpp's load-time chatter so stderr keeps only our progress lines."""
    global _LOG_SINK
    if _LOG_SINK is None:
        # subtle: llama.cpp keeps a raw pointer to this callback for the life of the
        # process, so it must live at module level, never with an engine that may go
        _LOG_SINK = ll.llama_log_callback(lambda level, text, data: note_log(level, text))
        ll.llama_log_set(_LOG_SINK, ctypes.c_void_p(0))


def _cpu_has_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class LlamaBackend(Backend):
    """Runs a local GGUF model with llama.cpp, batching all requests as parallel sequences."""

    name = "llama"
    capabilities = Capabilities(
        grammar=True, json_schema=True, logprobs=True, prefix_cache=True, prefill=True
    )

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 16384,
        n_parallel: int = 8,
        n_threads: int | None = None,
        n_batch: int = 512,
        prefix_cache: bool = True,
        verbose: bool = False,
        lora: Path | None = None,
        lora_scale: float = 1.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.lora, self.lora_scale = lora, lora_scale
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_batch = n_batch
        self.prefix_cache = prefix_cache
        self.verbose = verbose
        self._engine: _Engine | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        lora = f" + LoRA {self.lora.name} x{self.lora_scale:g}" if self.lora else ""
        return (f"llama:{self.model_path.name}{lora} "
                f"(threads={self.n_threads}, slots={self.n_parallel})")

    def _get_engine(self) -> _Engine:
        with self._lock:
            if self._engine is None:
                check_real_model(f"model {self.model_path}")
                self._engine = _Engine(self)
            return self._engine

    async def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        engine = await asyncio.to_thread(self._get_engine)  # loading takes a second or two
        loop = asyncio.get_running_loop()
        jobs = [_Job(r, loop.create_future(), loop) for r in requests]
        engine.submit(jobs)
        try:
            return list(await asyncio.gather(*(j.future for j in jobs)))
        except asyncio.CancelledError:
            # a budget timeout cancelled us: free the slots instead of decoding on
            for job in jobs:
                job.cancelled = True
            raise

    def tokenize(self, text: str) -> list[int]:
        """Tokens of `text` as this model sees it (special tokens parsed)."""
        return self._get_engine().tokenize(text)

    async def score(
        self, items: list[tuple[str, str]], probes: Sequence[str] = ()
    ) -> list[Scored]:
        """Log-probabilities of each (context, continuation) pair's continuation tokens.

        Context and continuation are raw text (no chat template); each is tokenized on
        its own, so the same context scores the same way whatever follows it. `probes`
        are single-token strings whose log-probability is reported before every
        continuation token. Contexts shared between items are decoded once.
        """
        engine = await asyncio.to_thread(self._get_engine)
        probe_ids = [engine.single_token(p) for p in probes]
        loop = asyncio.get_running_loop()
        jobs = [ScoreJob(ctx, cont, probe_ids, loop.create_future(), loop)
                for ctx, cont in items]
        engine.submit(jobs)  # type: ignore[arg-type]
        return list(await asyncio.gather(*(j.future for j in jobs)))

    def render(self, messages: list[Message]) -> str:
        """The prompt text the chat template makes of `messages`."""
        return self._get_engine().render(messages)

    def tokenize_plain(self, text: str) -> list[int]:
        """Tokens of `text` on its own, without a BOS token."""
        return self._get_engine().tokenize(text, bos=False)

    def pieces(self, text: str) -> list[str]:
        """The text of each token of `text` (multi-byte characters may split oddly)."""
        engine = self._get_engine()
        return [engine.piece(t).decode("utf-8", "replace") for t in engine.tokenize(text, False)]

    async def aclose(self) -> None:
        if self._engine is not None:
            await asyncio.to_thread(self._engine.close)
            self._engine = None


# subtle: every model in this process computes on the same CPU cores, each with all of
# them; two contexts decoding at once oversubscribe the cores (their threads spin-wait on
# each other's) and both slow down many times over. So decodes take turns process-wide,
# step by step: a 0.5B and a 1.5B member of one society interleave instead of thrashing.
_DECODE_TURN = threading.Lock()


class _Engine(ScoringEngine):
    """Owns the llama.cpp model and context; everything here runs on one worker thread."""

    def __init__(self, cfg: LlamaBackend) -> None:
        import llama_cpp as ll  # imported here so the rest of minsky works without it

        self.ll = ll
        if not cfg.verbose:
            _silence_llama_logs(ll)
        ll.llama_backend_init()
        mparams = ll.llama_model_default_params()
        # subtle: llama.cpp's AMX kernels (picked through "extra buffer types" on CPUs
        # with AMX tiles) segfault on this model family in the vendored build; weights
        # stay in plain CPU buffers there, which costs nothing on a 2-core machine
        mparams.use_extra_bufts = not _cpu_has_amx()
        self.model = ll.llama_model_load_from_file(str(cfg.model_path).encode(), mparams)
        if not self.model:
            raise MinskyError(f"llama.cpp could not load model file {cfg.model_path}")
        self.vocab = ll.llama_model_get_vocab(self.model)
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = cfg.n_ctx
        cparams.n_batch = cfg.n_batch
        cparams.n_ubatch = cfg.n_batch
        cparams.n_seq_max = cfg.n_parallel
        cparams.n_threads = cfg.n_threads
        cparams.n_threads_batch = cfg.n_threads
        # unified KV: sequences share one buffer, so copying a common prefix is free
        cparams.kv_unified = True
        self.ctx = ll.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise MinskyError(f"llama.cpp could not create a context for {cfg.model_path}")
        try:
            self.lora = attach(ll, self.model, self.ctx, cfg.lora, cfg.lora_scale)
        except MinskyError:
            ll.llama_free(self.ctx)
            ll.llama_model_free(self.model)
            raise
        self.mem = ll.llama_get_memory(self.ctx)
        self.n_ctx = ll.llama_n_ctx(self.ctx)
        self.n_batch = cfg.n_batch
        self.prefix_cache = cfg.prefix_cache
        self.batch = ll.llama_batch_init(cfg.n_batch, 0, 1)
        self.slots = [_Slot(i) for i in range(cfg.n_parallel)]
        self.waiting: deque[_Job] = deque()
        self.scoring: deque[ScoreJob] = deque()
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.inbox: queue.Queue[list[_Job] | None] = queue.Queue()
        self.template = self._template()
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self.vocab))
        self.bos = ll.llama_vocab_bos(self.vocab)
        self.thread = threading.Thread(target=self._run, name="minsky-llama", daemon=True)
        self.thread.start()

    # -- text <-> tokens -------------------------------------------------------------

    def _template(self) -> Template:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        buf = ctypes.create_string_buffer(1 << 16)
        n = self.ll.llama_model_meta_val_str(
            self.model, b"tokenizer.chat_template", buf, ctypes.sizeof(buf)
        )
        source = buf.value.decode("utf-8", "replace") if n > 0 else _CHATML
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
        return env.from_string(source)

    def render(self, messages: list[Message]) -> str:
        return self.template.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            bos_token="",
            eos_token="",
        )

    def tokenize(self, text: str, bos: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (self.ll.llama_token * cap)()
        n = self.ll.llama_tokenize(self.vocab, data, len(data), arr, cap, False, True)
        if n < 0:
            raise MinskyError("prompt could not be tokenized")
        tokens = list(arr[:n])
        if bos and self.add_bos and (not tokens or tokens[0] != self.bos):
            tokens.insert(0, self.bos)
        return tokens

    def single_token(self, text: str) -> int:
        tokens = self.tokenize(text, bos=False)
        if len(tokens) != 1:
            raise MinskyError(f"probe {text!r} is {len(tokens)} tokens for this model, not 1")
        return tokens[0]

    def piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def _sampler(self, request: ChatRequest) -> Any:
        ll = self.ll
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        grammar = request.grammar
        if grammar is None and request.json_schema is not None:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            grammar = json_schema_to_gbnf(json.dumps(request.json_schema))
        if grammar is not None:
            g = ll.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
            if not g:
                ll.llama_sampler_free(chain)
                raise MinskyError("the grammar does not parse (llama.cpp GBNF)")
            ll.llama_sampler_chain_add(chain, g)
        opts = request.options
        sampled = opts.temperature > 0
        if sampled and opts.top_k > 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(opts.top_k))
        if opts.repeat_penalty > 1.0:
            # after top-k: the penalty visits every candidate left, so fewer is cheaper
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_penalties(
                self.n_vocab, 64, opts.repeat_penalty, 0.0, 0.0))
        if not sampled:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            seed = opts.seed if opts.seed is not None else int.from_bytes(os.urandom(4), "little")
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(opts.top_p, 1))
            if opts.min_p > 0:
                ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_min_p(opts.min_p, 1))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(opts.temperature))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    # -- the worker loop -------------------------------------------------------------

    def submit(self, jobs: list[_Job]) -> None:
        self.inbox.put(jobs)

    def decode(self, batch: Any) -> int:
        """One `llama_decode`, in this process's turn; returns its status code."""
        with _DECODE_TURN:
            return int(self.ll.llama_decode(self.ctx, batch))

    def close(self) -> None:
        self.inbox.put(None)
        self.thread.join()
        ll = self.ll
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        detach(ll, self.lora)  # after the context that uses it, before its model
        ll.llama_model_free(self.model)

    def _busy(self) -> bool:
        return any(s.job is not None for s in self.slots) or bool(self.scoring)

    def _sort(self, jobs: list[Any]) -> None:
        for job in jobs:
            (self.scoring if isinstance(job, ScoreJob) else self.waiting).append(job)

    def _run(self) -> None:
        while True:
            # block only when there is nothing to decode
            try:
                item = self.inbox.get(block=not (self._busy() or self.waiting))
            except queue.Empty:
                item = []
            if item is None:
                return
            self._sort(item)
            while True:  # drain whatever else arrived, so it joins this step's batch
                try:
                    more = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.inbox.put(None)
                    break
                self._sort(more)
            try:
                self._admit()
                self._score_one()
                if self._busy():
                    self._step()
            except Exception as exc:  # noqa: BLE001 - one failure must not kill the worker
                for slot in self.slots:
                    if slot.job is not None:
                        self._finish(slot, "error", f"llama.cpp: {exc}")

    def _drop_cancelled(self) -> None:
        self.waiting = deque(j for j in self.waiting if not j.cancelled)
        for slot in self.slots:
            if slot.job is not None and slot.job.cancelled:
                self._finish(slot, "error", "cancelled")

    def _admit(self) -> None:
        self._drop_cancelled()
        if not self.prefix_cache:
            # measured baseline: every request decodes its whole prompt from scratch
            for slot in self.slots:
                if slot.job is None and slot.cached:
                    self.ll.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                    slot.cached = []
        deferred: deque[_Job] = deque()
        while self.waiting:
            free = [s for s in self.slots if s.job is None]
            if not free:
                break
            job = self.waiting.popleft()
            try:
                if not job.tokens:
                    prompt = self.render(job.request.messages) + job.request.prefix
                    job.tokens = self.tokenize(prompt)
                if len(job.tokens) >= self.n_ctx:
                    raise MinskyError(
                        f"prompt has {len(job.tokens)} tokens, the context holds {self.n_ctx}"
                    )
                sampler = self._sampler(job.request)
            except MinskyError as exc:
                self._reply(job, ChatReply("", finish_reason="error", error=str(exc)))
                continue
            plan = self._plan(job.tokens, free)
            if plan is None:
                self.ll.llama_sampler_free(sampler)
                deferred.append(job)
                continue
            own, donor, keep = plan
            if donor is not None:
                self.ll.llama_memory_seq_rm(self.mem, own.seq_id, -1, -1)
                self.ll.llama_memory_seq_cp(self.mem, donor.seq_id, own.seq_id, 0, keep)
                own.cached = donor.cached[:keep]
            else:
                self.ll.llama_memory_seq_rm(self.mem, own.seq_id, keep, -1)
                own.cached = own.cached[:keep]
            own.job, own.sampler = job, sampler
            own.prefill = job.tokens[len(own.cached) :]
            own.n_cached_prompt = len(own.cached)
            own.pending, own.out, own.n_generated = None, bytearray(), 0
            own.logprobs, own.top_logprobs = [], []
        self.waiting.extendleft(reversed(deferred))

    def _plan(
        self, tokens: list[int], free: list[_Slot]
    ) -> tuple[_Slot, _Slot | None, int] | None:
        """Pick a slot for a prompt and the cached prefix it can keep.

        Returns (slot, donor, length): keep `length` tokens of the slot's own cache, or,
        with a donor, copy the donor's first `length` tokens. None: wait one step,
        because another slot is decoding a prompt with a long prefix in common.
        """
        if not self.prefix_cache:
            return free[0], None, 0
        # keep at least one prompt token to decode: its logits give the first sample
        limit = len(tokens) - 1
        own = max(free, key=lambda s: _lcp(s.cached, tokens))
        own_len = min(_lcp(own.cached, tokens), limit)
        donor, donor_len = None, own_len
        for s in self.slots:
            n = min(_lcp(s.cached, tokens), limit)
            if s is not own and n > donor_len:
                donor, donor_len = s, n
        planned = max(
            (_lcp(s.cached + s.prefill, tokens) for s in self.slots if s.prefill), default=0
        )
        if min(planned, limit) >= donor_len + _MIN_SHARED_PREFIX:
            return None
        if donor is not None and donor_len >= own_len + _MIN_SHARED_PREFIX:
            return own, donor, donor_len
        return own, None, own_len

    def _step(self) -> None:
        ll, batch = self.ll, self.batch
        batch.n_tokens = 0
        added: list[tuple[_Slot, list[int]]] = []

        def add(slot: _Slot, token: int, pos: int, logits: bool) -> None:
            i = batch.n_tokens
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = slot.seq_id
            batch.logits[i] = logits
            batch.n_tokens = i + 1
            if logits:
                slot.i_batch = i

        for slot in self.slots:
            if slot.job is not None and slot.pending is not None:
                add(slot, slot.pending, len(slot.cached), True)
                added.append((slot, [slot.pending]))
                slot.pending = None
        budget = self.n_batch - batch.n_tokens
        for slot in self.slots:
            if slot.job is None or not slot.prefill or budget <= 0:
                continue
            chunk, slot.prefill = slot.prefill[:budget], slot.prefill[budget:]
            for k, tok in enumerate(chunk):
                last = k == len(chunk) - 1 and not slot.prefill
                add(slot, tok, len(slot.cached) + k, last)
            added.append((slot, chunk))
            budget -= len(chunk)
        if batch.n_tokens == 0:
            return
        rc = self.decode(batch)
        if rc != 0:
            # KV cache full (rc 1) or a hard failure: free idle caches; fail the rest now
            # rather than loop, and the idle memory lets the next requests through
            for slot in self.slots:
                if slot.job is None:
                    ll.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                    slot.cached = []
            for slot, _ in added:
                ll.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                slot.cached = []
                self._finish(slot, "error", f"llama_decode failed (code {rc}): context full")
            return
        for slot, tokens in added:
            slot.cached.extend(tokens)
        for slot, _ in added:
            if slot.job is None or slot.prefill or slot.i_batch < 0:
                continue
            token = ll.llama_sampler_sample(slot.sampler, self.ctx, slot.i_batch)
            opts = slot.job.request.options
            if opts.logprobs or opts.top_logprobs:
                self._note_logprobs(slot, token, opts.top_logprobs)
            slot.i_batch = -1
            self._take(slot, token)

    def _note_logprobs(self, slot: _Slot, token: int, top: int) -> None:
        """Record the sampled token's log-probability (and the likeliest alternatives)
        under the model's own distribution, before any sampler reshaped it."""
        row = logit_rows(self.ll.llama_get_logits_ith(self.ctx, slot.i_batch), 1,
                         self.n_vocab)[0]
        peak = float(row.max())
        norm = peak + float(np.log(np.exp(row - peak).sum(dtype=np.float64)))
        if self.ll.llama_vocab_is_eog(self.vocab, token):
            return  # the end of turn is not part of the text
        slot.logprobs.append(round(float(row[token]) - norm, 4))
        if top:
            best = np.argpartition(row, -top)[-top:]
            slot.top_logprobs.append({
                self.piece(int(t)).decode("utf-8", "replace"): round(float(row[t]) - norm, 4)
                for t in best[np.argsort(-row[best])]
            })

    def _take(self, slot: _Slot, token: int) -> None:
        assert slot.job is not None
        opts = slot.job.request.options
        if self.ll.llama_vocab_is_eog(self.vocab, token):
            self._finish(slot, "stop")
            return
        slot.n_generated += 1
        piece = self.piece(token)
        slot.out += piece
        # a new stop string can only end inside the new piece: look at the tail first, so
        # the whole reply is not decoded again at every token
        tail = len(piece) + 4 * max((len(s) for s in opts.stop), default=0)
        if opts.stop and any(s in slot.out[-tail:].decode("utf-8", "ignore") for s in opts.stop):
            text = slot.out.decode("utf-8", "ignore")
            hits = [(i, s) for s in opts.stop if (i := text.find(s)) >= 0]
            if hits:
                at, stop = min(hits)
                slot.out = bytearray(text[:at].encode())
                self._finish(slot, "stop", stop=stop)
                return
        if slot.n_generated >= opts.max_tokens or len(slot.cached) + 1 >= self.n_ctx:
            self._finish(slot, "length")
            return
        slot.pending = token

    def _finish(
        self, slot: _Slot, reason: str, error: str | None = None, stop: str | None = None
    ) -> None:
        job = slot.job
        assert job is not None
        usage = Usage(len(job.tokens), slot.n_generated, slot.n_cached_prompt)
        text = "" if error else slot.out.decode("utf-8", "ignore")
        reply = ChatReply(
            text, usage, time.perf_counter() - job.started, reason, error, stop  # type: ignore[arg-type]
        )
        opts = job.request.options
        if opts.logprobs and not error:
            reply.logprobs = slot.logprobs[: slot.n_generated]
        if opts.top_logprobs and not error:
            reply.top_logprobs = slot.top_logprobs[: slot.n_generated]
        if slot.sampler is not None:
            self.ll.llama_sampler_free(slot.sampler)
        slot.job, slot.sampler, slot.prefill, slot.pending = None, None, [], None
        self._reply(job, reply)

    @staticmethod
    def _reply(job: _Job, reply: ChatReply) -> None:
        def settle() -> None:
            if not job.future.done():
                job.future.set_result(reply)

        # a closed event loop means nobody is waiting for this reply any more
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(settle)
