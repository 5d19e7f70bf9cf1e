"""The contamination test: its statistics on synthetic data where the answer is known."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from minsky.cli import main
from minsky.errors import MinskyError
from minsky.evals.contamination import contamination_test, examples_of, shards_of

EXAMPLES = [f"example number {i}: {random.Random(i).random():.6f}" for i in range(40)]


def memorising(examples):
    """A fake model that saw `examples` in order: each adjacent pair in the canonical
    order earns a bonus, so the canonical order is the likeliest."""
    follows = {a: b for a, b in zip(examples, examples[1:], strict=False)}

    async def loglik(items):
        out = []
        for _, text in items:
            parts = text.split("\n")
            bonus = sum(follows.get(a) == b for a, b in zip(parts, parts[1:], strict=False))
            out.append(-100.0 + 3.0 * bonus)
        return out

    return loglik


async def exchangeable(items):
    """A fake model that never saw the data: any order is as likely, up to noise."""
    rng = random.Random(len(items[0][1]))
    return [-100.0 + rng.gauss(0, 1) for _ in items]


def test_a_memorised_order_is_detected() -> None:
    result = asyncio.run(contamination_test(memorising(EXAMPLES), EXAMPLES, shards=4,
                                            per_shard=8, permutations=10))
    assert result["p_value"] < 0.01
    assert result["mean_difference"] > 0
    assert len(result["canonical"]) == 4 and all(len(s) == 10 for s in result["shuffled"])


def test_an_unseen_benchmark_gives_no_evidence() -> None:
    result = asyncio.run(contamination_test(exchangeable, EXAMPLES, shards=4, per_shard=8,
                                            permutations=10))
    assert result["p_value"] > 0.05


def test_shuffles_are_seeded_and_shards_consecutive() -> None:
    seen = []

    async def record(items):
        seen.append([text for _, text in items])
        return [0.0] * len(items)

    asyncio.run(contamination_test(record, EXAMPLES, shards=2, per_shard=3, permutations=2,
                                   seed=7))
    first = list(seen)
    seen.clear()
    asyncio.run(contamination_test(record, EXAMPLES, shards=2, per_shard=3, permutations=2,
                                   seed=7))
    assert seen == first
    assert first[0][0] == "\n".join(EXAMPLES[0:3]) and first[1][0] == "\n".join(EXAMPLES[3:6])
    assert sorted(first[0][1].split("\n")) == sorted(EXAMPLES[0:3])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MinskyError, match="need 20, the benchmark has 3"):
        shards_of(["a", "b", "c"], 4, 5)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"q": 1}\n{oops\n')
    with pytest.raises(MinskyError, match="b.jsonl:2: not valid JSON"):
        examples_of(bad)


def test_cli_refuses_a_backend_without_log_probabilities(tmp_path: Path) -> None:
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"q": i}) + "\n" for i in range(20)))
    result = CliRunner().invoke(main, ["contamination", "--bench", str(bench), "--model",
                                       "echo:"])
    assert result.exit_code == 2
    assert "cannot give token log-probabilities" in result.output


def test_cli_shows_a_bar_of_shards_scored(tmp_path: Path, terminal: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from minsky.backends.base import Capabilities
    from minsky.runner import Backends

    class Scorer:
        """A backend that scores every order alike (a model that never saw the data)."""

        capabilities = Capabilities(logprobs=True)

        async def score(self, items: list[tuple[str, str]]) -> list[Any]:
            return [SimpleNamespace(total=-100.0 - i % 2) for i, _ in enumerate(items)]

        def describe(self) -> str:
            return "scorer"

        async def aclose(self) -> None:
            pass

    monkeypatch.setattr(Backends, "get", lambda self, spec: Scorer())
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"q": i}) + "\n" for i in range(20)))
    args = ["contamination", "--bench", str(bench), "--shards", "4", "--per-shard", "5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "shards" in terminal.getvalue() and "4/4" in terminal.getvalue()
    terminal.truncate(0)
    assert CliRunner().invoke(main, [*args, "--json"]).exit_code == 0
    assert terminal.getvalue() == ""
