"""STaR end to end on the tiny real model: mine with scripted fakes, train two steps,
write the GGUF adapter, load it in the llama backend, and see the model change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_star import SOCIETY, bench_file, reply_for

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.evals.benchmarks import load_benchmark
from minsky.models import resolve_gguf
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load
from minsky.star.export import sft_rows
from minsky.star.fresh import mine_fresh
from minsky.star.mine import Exclusion
from minsky.star.rows import write_rows


@pytest.mark.real
def test_mine_train_load_changes_log_probabilities(tmp_path: Path) -> None:
    from minsky.backends.llama import LlamaBackend
    from minsky.star.adapter import read_adapter
    from minsky.star.train import train_adapter

    # 1. mine three problems with scripted programmers (k = 0, 1, 2: two solved, one
    # rationalized with the answer as a hint)
    bench = bench_file(tmp_path / "train.jsonl", 3)
    log = RunLog(tmp_path / "runs.db")
    runner = Runner(Backends(overrides={"fake:m": FunctionBackend(reply_for)}), log)

    async def mine() -> object:
        async with runner:
            return await mine_fresh(runner, log, load(str(SOCIETY), "fake:m"),
                                    load_benchmark(bench), tmp_path / "mined.jsonl",
                                    Exclusion(), concurrency=3)

    mined = asyncio.run(mine())
    rows = sft_rows(mined.rows, Exclusion())  # type: ignore[attr-defined]
    assert len(rows) == 3 and sum(r["hinted"] for r in rows) == 1
    data = tmp_path / "sft.jsonl"
    write_rows(data, rows)

    # 2. two training steps on the tiny model, written as a GGUF LoRA adapter
    adapter = tmp_path / "adapter.gguf"
    report = train_adapter(data, adapter, base="smollm2-135m", rank=4, alpha=8, batch=2,
                           max_steps=2, lr=5e-3, progress=False)
    assert report.steps == 2 and adapter.is_file()
    info = read_adapter(adapter)
    assert info.rank == 4 and info.base_name == resolve_gguf("smollm2-135m").name

    # 3. the same prompt scores differently with the adapter loaded
    context = "Ann has 2 apples and 3 pears. How many fruits does she have?\n"
    continuation = "def solution():\n    return 2 + 3"

    async def score(lora: Path | None) -> list[float]:
        backend = LlamaBackend(resolve_gguf("smollm2-135m"), lora=lora, n_ctx=512,
                               n_parallel=1, n_threads=2)
        try:
            [scored] = await backend.score([(context, continuation)])
            return list(scored.logprobs)
        finally:
            await backend.aclose()

    base, tuned = asyncio.run(score(None)), asyncio.run(score(adapter))
    assert len(base) == len(tuned)
    assert max(abs(a - b) for a, b in zip(base, tuned, strict=True)) > 1e-3
    log.close()
