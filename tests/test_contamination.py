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
    from minsky.backends.base import Capabilities, Scored
    from minsky.backends.registry import Backends

    class Scorer:
        """A backend that scores every order alike (a model that never saw the data)."""

        capabilities = Capabilities(logprobs=True)

        async def score(self, items: list[tuple[str, str]], probes: Any = ()) -> list[Scored]:
            return [Scored([0], [-100.0 - i % 2], []) for i, _ in enumerate(items)]

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


def memorising_model(examples):
    """`memorising` as the shipped scoring fake: each line that follows its canonical
    predecessor is likelier."""
    from minsky.backends.fakes import ScoringFake

    follows = {a: b for a, b in zip(examples, examples[1:], strict=False)}
    known = set(examples)

    def logprob(before: str, token: str) -> float:
        # the token that completes a line, after the line that canonically precedes it
        lines = (before + token).split("\n")
        if len(lines) >= 2 and lines[-1] in known and follows.get(lines[-2]) == lines[-1]:
            return 2.0
        return -1.0

    return ScoringFake(logprob)


async def test_the_test_through_a_logged_run_gives_the_same_numbers(log) -> None:
    from minsky.backends.base import scoring
    from minsky.backends.registry import Backends
    from minsky.evals.contamination import run_loglik
    from minsky.runner import Runner

    model = memorising_model(EXAMPLES)

    async def direct(items):
        return [s.total for s in await scoring(model).score(items)]

    plain = await contamination_test(direct, EXAMPLES, shards=4, per_shard=5, permutations=3)
    assert plain["p_value"] < 0.05  # the fake remembers the order
    runner = Runner(Backends(overrides={"fake:s": model}), log)
    async with runner.direct("fake:s", "contamination") as run:
        logged = await contamination_test(run_loglik(run), EXAMPLES, shards=4, per_shard=5,
                                          permutations=3)
    assert logged == plain
    (listed,) = log.list_runs()
    shown = log.get_run(listed["id"])
    assert len(shown["scores"]) == 4 * (1 + 3) and len(shown["rounds"]) == 4
    assert shown["prompt_tokens"] == sum(s["prompt_tokens"] for s in shown["scores"]) > 0


def test_cli_logs_the_test_as_a_run_with_its_scores(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from minsky.backends.registry import Backends

    monkeypatch.setattr(Backends, "get", lambda self, spec: memorising_model(EXAMPLES))
    bench = tmp_path / "b.txt"
    bench.write_text("".join(e + "\n" for e in EXAMPLES[:20]))
    db = tmp_path / "logs.db"
    args = ["contamination", "--bench", str(bench), "--shards", "4", "--per-shard", "5",
            "--permutations", "2", "--log", str(db), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(main, ["logs", "list", "--log", str(db), "--json"])
    (run,) = json.loads(listed.stdout)
    assert run["society"] == "contamination" and run["status"] == "ok"
    assert run["prompt_tokens"] > 0
    shown = CliRunner().invoke(main, ["logs", "show", run["id"], "--log", str(db), "--json"])
    scores = json.loads(shown.stdout)["scores"]
    assert len(scores) == 4 * 3 and all(s["prompt_tokens"] > 0 for s in scores)
    human = CliRunner().invoke(main, ["logs", "show", run["id"], "--log", str(db)])
    assert human.exit_code == 0 and "orders · score" in human.stdout


def test_contamination_takes_no_log_but_not_both() -> None:
    from click.testing import CliRunner

    from minsky.cli import main

    out = CliRunner().invoke(main, ["contamination", "--bench", "x.jsonl", "--log", "l.db",
                                    "--no-log", "--model", "echo:"])
    assert out.exit_code != 0 and "--log and --no-log" in out.output
