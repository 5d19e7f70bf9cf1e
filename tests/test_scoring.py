"""The log-probabilities scoring picks out of the model's logits."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from minsky.backends.scoring import logit_rows, pick_logprobs


def reference(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    return x - x.max(axis=1, keepdims=True) - np.log(
        np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("chunk", [1, 3, 32])
def test_picked_logprobs_match_a_full_log_softmax(chunk: int) -> None:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((7, 5000)) * 8).astype(np.float32)
    targets, probes = [3, 4999, 0, 17, 17, 2500], [1, 42]
    got, probed = pick_logprobs(logits, targets, probes, chunk=chunk)
    full = reference(logits)
    assert got == pytest.approx([full[i, t] for i, t in enumerate(targets)], abs=1e-5)
    assert np.asarray(probed) == pytest.approx(full[:, probes], abs=1e-5)
    assert len(probed) == 7  # probes at every row, targets only where given


def test_hand_computed_two_token_vocabulary() -> None:
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], dtype=np.float32)
    got, probed = pick_logprobs(logits, [0, 1], [])
    assert got == pytest.approx([np.log(0.5), np.log(0.25)], abs=1e-6)
    assert probed == [[], []]


def test_logit_rows_read_a_c_buffer_in_place() -> None:
    buf = (ctypes.c_float * 6)(1, 2, 3, 4, 5, 6)
    rows = logit_rows(ctypes.cast(buf, ctypes.c_void_p), 2, 3)
    assert rows.tolist() == [[1, 2, 3], [4, 5, 6]]
    buf[4] = 50
    assert rows[1, 1] == 50  # a view, not a copy


def test_probes_without_targets() -> None:
    logits = np.zeros((2, 4), dtype=np.float32)
    got, probed = pick_logprobs(logits, [], [1])
    assert got == []
    assert np.asarray(probed) == pytest.approx(np.full((2, 1), np.log(0.25)))
