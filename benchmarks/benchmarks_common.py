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


MAWPS = GSM8K.parents[1] / "mawps"


def mawps_sample(n: int, seed: int, folder: Path = MAWPS) -> list[tuple[int, str, str]]:
    """(index, question, gold) for `random.Random(seed).sample` of n problems from the four
    MAWPS files read in name order and concatenated (the index counts across them)."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [(i, rows[i]["input"], str(rows[i]["target"])) for i in picked]


BENCHES = {"gsm8k": gsm8k_sample, "mawps": mawps_sample}
