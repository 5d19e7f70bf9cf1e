"""Shared by the benchmark scripts: the fixed, documented GSM8K development sample."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"


def gsm8k_sample(n: int, seed: int, path: Path = GSM8K) -> list[tuple[int, str, str]]:
    """(line index, question, gold answer) for `random.Random(seed).sample` of n lines,
    sorted by index. The gold answer is the number after '####', commas removed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    picked = sorted(random.Random(seed).sample(range(len(lines)), n))
    cases = []
    for i in picked:
        row = json.loads(lines[i])
        gold = re.sub(r"[,\s]", "", row["answer"].split("####")[-1])
        cases.append((i, row["question"], gold))
    return cases
