"""Shared by the benchmark scripts: the fixed, documented development samples, the run
log, and the results-file writer of the timing scripts."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minsky.paths import home_dir
from minsky.runlog import RunLog

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
MAWPS = GSM8K.parents[1] / "mawps"

Case = tuple[int, str, str]  # (index, question, gold answer)


def gsm8k_cases(path: Path = GSM8K) -> list[Case]:
    """Every line of the file; the gold answer is the number after '####', commas removed."""
    cases = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        cases.append((i, row["question"], re.sub(r"[,\s]", "", row["answer"].split("####")[-1])))
    return cases


def mawps_cases(folder: Path = MAWPS) -> list[Case]:
    """The problems of the four MAWPS files read in name order and concatenated (the index
    counts across them)."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(i, r["input"], str(r["target"])) for i, r in enumerate(rows)]


BENCHES: dict[str, Callable[[], list[Case]]] = {"gsm8k": gsm8k_cases, "mawps": mawps_cases}


def sample(bench: str, n: int, seed: int, exclude: Collection[int] = ()) -> list[Case]:
    """`random.Random(seed).sample` of n cases of `bench` whose index is not in `exclude`,
    sorted by index."""
    cases = [c for c in BENCHES[bench]() if c[0] not in exclude]
    picked = sorted(random.Random(seed).sample(range(len(cases)), n))
    return [cases[i] for i in picked]


def gsm8k_sample(n: int, seed: int) -> list[Case]:
    """The GSM8K train sample the docs' tables use (seed 0)."""
    return sample("gsm8k", n, seed)


def run_log() -> RunLog:
    """This machine's run log ($MINSKY_HOME/logs.db), read-only."""
    return RunLog.read_only(home_dir() / "logs.db")


def tool_calls(log: RunLog, run_id: str) -> tuple[int, int]:
    """(tool calls, of which errors) that run `run_id` made."""
    counts = log.counts(run_id)
    return counts["tool_calls"], counts["tool_errors"]


def append_result(path: Path, row: dict[str, Any]) -> None:
    """Append `row` to the results file `path` as one JSON line, stamped with the UTC time
    it was measured (`measured_at`), so reruns add rows beside the earlier ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **row}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(stamped) + "\n")
