"""Token log-probabilities from the embedded model: what likelihood-based methods need.

`Scored` is the answer to "how likely is this continuation after this context": the
log-probability of every continuation token given everything before it, and, at each of
those positions, the log-probability of a few probe tokens (e.g. "[" — how likely was a
tool call to start here). Toolformer's annotation filter and the contamination
permutation test are built on it. Only backends that evaluate the model themselves can
give it; `Capabilities.logprobs` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from minsky.backends.base import Scored
from minsky.errors import MinskyError

__all__ = ["ScoreJob", "ScoringEngine", "logit_rows", "pick_logprobs"]


def logit_rows(logits: Any, n_rows: int, n_vocab: int) -> np.ndarray:
    """Rows of logits (a C float pointer) as a float32 array, without a copy."""
    return np.ctypeslib.as_array(
        ctypes.cast(logits, ctypes.POINTER(ctypes.c_float)), shape=(n_rows, n_vocab))


def pick_logprobs(
    rows: np.ndarray, targets: list[int], probes: list[int], chunk: int = 32
) -> tuple[list[float], list[list[float]]]:
    """For row i of logits: the log-probability of targets[i] and of every probe.

    Only the normaliser needs the whole row, so it is computed a few rows at a time: a
    float64 log-softmax of every row copied the full vocabulary per position, and the
    page faults of those copies were a fifth of scoring time. Sums are kept in float64.
    """
    n = rows.shape[0]
    norm = np.empty(n)
    for i in range(0, n, chunk):
        block = rows[i : i + chunk]
        top = block.max(axis=1, keepdims=True)
        norm[i : i + chunk] = top[:, 0] + np.log(
            np.exp(block - top).sum(axis=1, dtype=np.float64))
    picked = rows[np.arange(len(targets)), np.asarray(targets, dtype=np.intp)] - norm[
        : len(targets)]
    probe = rows[:, probes] - norm[:, None] if probes else np.zeros((n, 0))
    return picked.astype(np.float64).tolist(), probe.astype(np.float64).tolist()


@dataclass
class ScoreJob:
    """A (context, continuation) waiting for the engine's worker thread."""

    context: str
    continuation: str
    probes: list[int]
    future: asyncio.Future[Scored]
    loop: asyncio.AbstractEventLoop
    cancelled: bool = False


class ScoringEngine:
    """The scoring half of the embedded engine (see `minsky.backends.llama._Engine`):
    decodes a context and continuation in a free slot, between generation steps, with
    logits for every continuation position, reusing a cached context like a prompt."""

    ll: Any
    ctx: Any
    mem: Any
    batch: Any
    n_ctx: int
    n_batch: int
    n_vocab: int
    slots: list[Any]
    scoring: Any

    def tokenize(self, text: str, bos: bool = True) -> list[int]:
        raise NotImplementedError

    def _plan(self, tokens: list[int], free: list[Any]) -> Any:
        raise NotImplementedError

    def decode(self, batch: Any) -> int:
        raise NotImplementedError

    def _score_one(self) -> None:
        """Score one waiting (context, continuation) in a free slot, between steps."""
        free = [s for s in self.slots if s.job is None]
        if not self.scoring or not free:
            return
        job = self.scoring.popleft()
        try:
            ctx = self.tokenize(job.context)
            cont = self.tokenize(job.continuation, bos=False)
            if not ctx or not cont:
                raise MinskyError("scoring needs a non-empty context and continuation")
            if len(ctx) + len(cont) >= self.n_ctx:
                raise MinskyError(f"{len(ctx) + len(cont)} tokens do not fit in {self.n_ctx}")
            result = self._score_tokens(ctx, cont, job.probes, free)
        except MinskyError as exc:
            self._settle(job, exc)
            return
        self._settle(job, result)

    def _score_tokens(
        self, ctx: list[int], cont: list[int], probes: list[int], free: list[Any]
    ) -> Scored:
        ll, batch = self.ll, self.batch
        tokens = ctx + cont
        plan = self._plan(ctx, free)  # reuse a cached context; always re-decode its end
        slot, donor, keep = plan if plan is not None else (free[0], None, 0)
        if donor is not None:
            ll.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            ll.llama_memory_seq_cp(self.mem, donor.seq_id, slot.seq_id, 0, keep)
        else:
            ll.llama_memory_seq_rm(self.mem, slot.seq_id, keep, -1)
        first = len(ctx) - 1  # the position whose logits predict the first continuation token
        logprobs: list[float] = []
        probe_rows: list[list[float]] = []
        pos = keep
        while pos < len(tokens) - 1:
            chunk = tokens[pos : min(len(tokens) - 1, pos + self.n_batch)]
            batch.n_tokens = 0
            outputs: list[int] = []
            for k, tok in enumerate(chunk):
                p = pos + k
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = tok, p, 1
                batch.seq_id[k][0] = slot.seq_id
                batch.logits[k] = p >= first
                if p >= first:
                    outputs.append(p)
            batch.n_tokens = len(chunk)
            if self.decode(batch) != 0:
                ll.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
                slot.cached = []
                raise MinskyError("llama_decode failed while scoring (context full?)")
            if outputs:
                start = len(chunk) - len(outputs)
                rows = logit_rows(
                    ll.llama_get_logits_ith(self.ctx, start), len(outputs), self.n_vocab
                )
                got, probed = pick_logprobs(rows, [tokens[p + 1] for p in outputs], probes)
                logprobs += got
                probe_rows += probed
            pos += len(chunk)
        slot.cached = tokens[:-1]
        return Scored(cont, logprobs, probe_rows, len(ctx), keep)

    @staticmethod
    def _settle(job: ScoreJob, value: Scored | Exception) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if isinstance(value, Exception):
                job.future.set_exception(value)
            else:
                job.future.set_result(value)

        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(settle)
