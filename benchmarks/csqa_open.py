"""CommonsenseQA as open text (issue 31's second check): the question without its options,
the gold option's text as the answer, scored by exact match after minsky's text
normalisation. Writes a JSONL that `minsky eval --fields question=question,answer=answer`
reads.

    python benchmarks/csqa_open.py --n 200 --seed 0 --out benchmarks/results/text/csqa-open.jsonl

Data: CommonsenseQA train split (MIT), ../shared/data/commonsenseqa/train_rand_split.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SOURCE = Path(__file__).parent.parent.parent / "shared/data/commonsenseqa/train_rand_split.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.source.read_text().splitlines() if line.strip()]
    random.Random(args.seed).shuffle(rows)
    with args.out.open("w") as f:
        for row in rows[: args.n]:
            gold = next(c["text"] for c in row["question"]["choices"]
                        if c["label"] == row["answerKey"])
            question = row["question"]["stem"] + " Answer in one or two words."
            f.write(json.dumps({"id": row["id"], "question": question, "answer": gold}) + "\n")


if __name__ == "__main__":
    main()
