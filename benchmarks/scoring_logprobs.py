"""Benchmark: picking log-probabilities out of a scoring pass's logits.

    python benchmarks/scoring_logprobs.py

Times the old way (every position's full-vocabulary row copied to float64 and
log-softmaxed) against `minsky.backends.scoring.pick_logprobs` (the float32 rows read in
place, the normaliser a few rows at a time) on random logits shaped like a 256-position
scoring pass of the default model (vocabulary 151,936), and prints the largest
difference between their answers. The model's own forward pass is not included.
"""

from __future__ import annotations

import time

import numpy as np

from minsky.backends.scoring import pick_logprobs

ROWS, VOCAB = 256, 151_936


def full_log_softmax(rows: np.ndarray, targets: list[int], probes: list[int]):
    raw = rows.astype(np.float64)
    top = raw.max(axis=1, keepdims=True)
    lp = raw - top - np.log(np.exp(raw - top).sum(axis=1, keepdims=True))
    return lp[np.arange(len(targets)), targets].tolist(), lp[:, probes].tolist()


def best_of(fn, *args, repeat: int = 3) -> tuple[float, object]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((ROWS, VOCAB)) * 5).astype(np.float32)
    targets, probes = rng.integers(0, VOCAB, ROWS).tolist(), [5, 6]
    old_s, (old, _) = best_of(full_log_softmax, rows, targets, probes)
    new_s, (new, _) = best_of(pick_logprobs, rows, targets, probes)
    diff = max(abs(a - b) for a, b in zip(old, new, strict=True))
    print(f"{ROWS} positions × {VOCAB} vocabulary: full float64 log-softmax {old_s:.3f} s, "
          f"pick_logprobs {new_s:.3f} s ({old_s / new_s:.1f}×); largest difference "
          f"{diff:.1e} nats")


if __name__ == "__main__":
    main()
