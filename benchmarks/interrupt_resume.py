"""Benchmark: a real Ctrl-C in the middle of `minsky eval`, then the same command again.

    python benchmarks/interrupt_resume.py --after 130 --out benchmarks/results/eval-gsm8k100.jsonl \
        -- minsky eval --bench ../shared/data/gsm8k/train.jsonl --society single \
           --society vote5 --limit 100 --seed 0 --threads 2 --json \
           --out benchmarks/results/eval-gsm8k100.jsonl

Starts the command, waits until `--out` holds `--after` finished cases, sends SIGINT (what
Ctrl-C sends), and records what the command said. Then it runs the identical command to
the end and checks the resume: the lines written before the interrupt are unchanged, no
(society, case) pair appears twice, and the rerun wrote only the cases that were missing.
The report (one JSON object) goes to stdout and `--log`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def lines(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--after", type=int, required=True, help="interrupt at this many rows")
    ap.add_argument("--out", type=Path, required=True, help="the command's --out file")
    ap.add_argument("--log", type=Path, default=None, help="also write the report here")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the minsky command")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    before = len(lines(args.out))
    if before >= args.after:
        sys.exit(f"{args.out} already holds {before} rows; use a fresh --out or a larger --after")

    # A background job's SIGINT is ignored by default; restore it so the child sees Ctrl-C.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    started = time.time()
    first = subprocess.Popen(command, preexec_fn=restore, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    while len(lines(args.out)) < args.after and first.poll() is None:
        time.sleep(1)
    at_signal = len(lines(args.out))
    first.send_signal(signal.SIGINT)
    _, err = first.communicate()
    kept = lines(args.out)
    print(f"interrupted after {time.time() - started:.0f}s: exit {first.returncode}, "
          f"{len(kept)} rows", file=sys.stderr, flush=True)

    second = subprocess.run(command, capture_output=True, text=True)
    final = lines(args.out)
    pairs = Counter((json.loads(x)["society"], json.loads(x)["case"]) for x in final if x)
    report = {
        "command": command,
        "rows_at_signal": at_signal,
        "interrupt_exit_code": first.returncode,
        "interrupt_message": err.strip().splitlines()[-1] if err.strip() else "",
        "rows_after_interrupt": len(kept),
        "rerun_exit_code": second.returncode,
        "rows_written_by_rerun": len(final) - len(kept),
        "finished_rows_unchanged": final[: len(kept)] == kept,
        "duplicate_pairs": sum(1 for c in pairs.values() if c > 1),
        "rerun_summary": json.loads(second.stdout) if second.returncode == 0 else None,
        "rerun_stderr_tail": second.stderr[-2000:],
        "wall_s": round(time.time() - started),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.log:
        args.log.write_text(text + "\n")


if __name__ == "__main__":
    main()
