"""One-off: convert the result files of the retired benchmarks/organisations.py (and of
benchmarks/calc_demo.py, which used its runner) to the rows `minsky eval` writes
(issue 16). Run once; kept for the record.

    python scripts/convert_organisations_results.py

An organisations.py row named its problem by a 0-based `index` over the benchmark's
lines (GSM8K train, or the four MAWPS files in name order); `minsky eval` names the
same problem `FILE-STEM:LINE` (1-based). The sample was the same draw
(`random.Random(seed).sample` over all problems, sorted), so the converted files are
what `minsky eval --bench … --limit N --seed 0 --out FILE` would resume from. Rows keep
their measurements; `calls` was not recorded then and stays absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BY_PREFIX = {"gsm8k": DATA / "gsm8k" / "train.jsonl", "mawps": DATA / "mawps"}
FILES: dict[str, Path | None] = {"gsm8k50.jsonl": BY_PREFIX["gsm8k"],
                                 "mawps100.jsonl": BY_PREFIX["mawps"],
                                 "mawps100-terse-demo.jsonl": BY_PREFIX["mawps"],
                                 "calc-demo.jsonl": None}


@cache
def case_ids(bench: Path) -> list[str]:
    """The eval case id of every problem, in organisations.py's index order."""
    files = sorted(bench.glob("*.jsonl")) if bench.is_dir() else [bench]
    return [f"{f.stem}:{n}" for f in files
            for n, line in enumerate(f.read_text(encoding="utf-8").split("\n"), 1)
            if line.strip()]


def convert(name: str, bench: Path | None) -> None:
    """Convert one file; with `bench` None each row's bench is its society's prefix
    ("gsm8k/single": benchmarks/calc_demo.py's rows)."""
    path = ROOT / "benchmarks" / "results" / name
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "index" in row:
            where = bench or BY_PREFIX[row["society"].split("/")[0]]
            index = row.pop("index")
            row = {"case": case_ids(where)[index], **row,
                   "bench": f"../shared/data/{where.relative_to(DATA)}"}
        out.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"{name}: {len(out)} rows")


if __name__ == "__main__":
    for name, bench in FILES.items():
        convert(name, bench)  # a converted row has no "index": running twice is harmless
