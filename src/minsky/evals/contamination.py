"""Test-set contamination without the training data (Oren et al. 2023, arXiv 2310.17623).

A model that saw a benchmark during training remembers its examples in their canonical
order, so it finds them more likely in that order than in a random one; a model that did
not cannot tell the orders apart (examples are exchangeable). The test splits the first
examples into shards of consecutive examples, scores each shard's concatenation in the
canonical order and in `permutations` random orders, and runs the sharded one-sided
t-test of `minsky.evals.stats`. A small p-value is evidence of contamination; a large one is
no evidence either way (short shards and few permutations have little power).

It needs token log-probabilities, which only a backend that evaluates the model itself
can give (`Capabilities.logprobs`: the embedded llama backend, not an HTTP server). The
scores are asked through a run of the runner's (`run_loglik`), so every one is logged
with its token counts and drawn from that run's budget.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minsky.errors import MinskyError
from minsky.evals.stats import sharded_permutation_test
from minsky.inputs.records import jsonl_objects, lines

if TYPE_CHECKING:
    from minsky.direct import DirectRun

# (context, continuation) pairs → total log-probability of each continuation
LogLikelihood = Callable[[list[tuple[str, str]]], Awaitable[list[float]]]
PREFIX = "\n"  # a fixed context, so that the first token of every order is scored too


def examples_of(path: Path) -> list[str]:
    """A benchmark's examples as text, canonical order: each JSONL record as written."""
    if not path.is_file():
        raise MinskyError(f"benchmark {path} does not exist (give one file, not a folder)")
    found = [line for line in lines(path) if line.strip()]
    if path.suffix == ".jsonl":
        jsonl_objects(path, "benchmark")  # every line must parse
    return found


def shards_of(examples: Sequence[str], shards: int, per_shard: int) -> list[list[str]]:
    """The first shards × per_shard examples, as consecutive shards."""
    need = shards * per_shard
    if len(examples) < need:
        raise MinskyError(
            f"{shards} shards of {per_shard} examples need {need}, the benchmark has "
            f"{len(examples)}"
        )
    return [list(examples[i * per_shard : (i + 1) * per_shard]) for i in range(shards)]


async def contamination_test(
    loglik: LogLikelihood,
    examples: Sequence[str],
    shards: int = 5,
    per_shard: int = 8,
    permutations: int = 10,
    seed: int = 0,
    prefix: str = PREFIX,
    on_shard: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Canonical against shuffled log-likelihoods, shard by shard, and the sharded t-test;
    `on_shard` is called as each shard is scored."""
    rng = random.Random(seed)
    canonical: list[float] = []
    shuffled: list[list[float]] = []
    for shard in shards_of(examples, shards, per_shard):
        orders = [list(shard)]
        for _ in range(permutations):
            order = list(shard)
            rng.shuffle(order)
            orders.append(order)
        scores = await loglik([(prefix, "\n".join(o)) for o in orders])
        canonical.append(scores[0])
        shuffled.append(list(scores[1:]))
        if on_shard:
            on_shard()
    result = sharded_permutation_test(canonical, shuffled)
    return {**result, "canonical": canonical, "shuffled": shuffled,
            "per_shard": per_shard, "permutations": permutations, "seed": seed}


def run_loglik(run: DirectRun) -> LogLikelihood:
    """Total log-likelihoods scored through `run` (`Runner.direct`), each batch of orders
    one logged round; a backend that cannot score refuses at the first batch (check it
    before any work with `minsky.backends.base.scoring`)."""
    async def loglik(items: list[tuple[str, str]]) -> list[float]:
        return [s.total for s in await run.score(items, purpose="orders")]

    return loglik
