#!/usr/bin/env bash
# Issue 31: the default society's text paths against `single` on MT-Bench and Vicuna first
# turns (interleaved, benchmarks/results/text/prompts-all.jsonl), judged in both orders by
# the 1.5B model (benchmarks/societies/judge-1.5b.toml). Staged: every stage extends the
# prompts by file order (--limit), and a rerun resumes from the results file, so cutting
# it anywhere loses at most the runs in flight.
#   bash benchmarks/text_arena.sh [STAGES...]    (default: 10 20 30 40 60 80)
set -uo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/text/arena.jsonl
log=benchmarks/results/text/runs.db   # the society runs, for `minsky star prefs` (not committed)
for n in "${@:-10 20 30 40 60 80}"; do
  for v in ${VARIANTS:-drafts critique}; do
    echo "== $(date -u +%FT%TZ) stage $n: single vs text-$v" >&2
    minsky arena --prompts benchmarks/results/text/prompts-all.jsonl --limit "$n" \
      --contestant single --contestant "benchmarks/societies/text-$v.toml" \
      --judge benchmarks/societies/judge-1.5b.toml --out "$out" --log "$log" \
      --threads "${THREADS:-2}" --concurrency "${CONCURRENCY:-4}" --json > /dev/null \
      || echo "arena exited $? (failed runs are retried by a rerun)" >&2
  done
done
