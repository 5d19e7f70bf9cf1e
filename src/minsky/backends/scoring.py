"""Token log-probabilities from the embedded model: what likelihood-based methods need.

`Scored` is the answer to "how likely is this continuation after this context": the
log-probability of every continuation token given everything before it, and, at each of
those positions, the log-probability of a few probe tokens (e.g. "[" — how likely was a
tool call to start here). Toolformer's annotation filter and the contamination
permutation test are built on it. Only backends that evaluate the model themselves can
give it; `Capabilities.logprobs` says which.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Scored:
    """Log-probabilities (natural log) of a continuation's tokens, and of probe tokens."""

    tokens: list[int]
    logprobs: list[float]
    probes: list[list[float]]  # [position][probe]: before each continuation token

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


def log_softmax_rows(logits: Any, n_rows: int, n_vocab: int) -> np.ndarray:
    """Rows of logits (a C float pointer) as log-probabilities."""
    raw = np.ctypeslib.as_array(
        ctypes.cast(logits, ctypes.POINTER(ctypes.c_float)), shape=(n_rows, n_vocab)
    ).astype(np.float64)
    top = raw.max(axis=1, keepdims=True)
    return raw - top - np.log(np.exp(raw - top).sum(axis=1, keepdims=True))


def gather(rows: np.ndarray, targets: list[int], probes: list[int]) -> tuple[list[float],
                                                                            list[list[float]]]:
    """For row i: the log-probability of targets[i] and of every probe."""
    picked = rows[np.arange(len(targets)), targets] if targets else np.zeros(0)
    probe = rows[:, probes] if probes else np.zeros((rows.shape[0], 0))
    return picked.tolist(), probe.tolist()
