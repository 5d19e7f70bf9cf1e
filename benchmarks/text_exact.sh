#!/usr/bin/env bash
# Issue 31's second check: CommonsenseQA as open text (no options shown; the gold option's
# text is the answer), scored by exact match after text normalisation, `single` against the
# default society's text path. Reruns resume from the results file.
#   bash benchmarks/text_exact.sh [N]   (default 60: the first N of a seed-0 sample of 200)
set -uo pipefail
cd "$(dirname "$0")/.."
data=benchmarks/results/text/csqa-open.jsonl
[ -f "$data" ] || python benchmarks/csqa_open.py --n 200 --seed 0 --out "$data"
minsky eval --bench "$data" --map question=question,answer=answer --society single \
  --society benchmarks/societies/text-drafts.toml --limit "${1:-60}" \
  --threads "${THREADS:-2}" --concurrency "${CONCURRENCY:-4}" \
  --out benchmarks/results/text/csqa.jsonl --log benchmarks/results/text/runs.db --json \
  > benchmarks/results/text/csqa-summary.json
