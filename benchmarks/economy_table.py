"""Markdown table of a `minsky economy run --json` report: economy on vs off, by generation.

    minsky economy run ... --json > report.json
    python benchmarks/economy_table.py report.json
"""

from __future__ import annotations

import json
import sys


def table(report: dict) -> str:
    lines = ["| generation | economy on: solved | accuracy (95 % CI) | members after | "
             "money after | wealth after (cents) | born | bankrupt | economy off: solved | "
             "accuracy (95 % CI) |", "|---" * 10 + "|"]
    base = {g["generation"]: g for g in report.get("baseline", [])}
    for g in report["generations"]:
        b = base.get(g["generation"])
        off = (f"{b['correct']}/{b['tasks']} | {b['accuracy']:.0%} "
               f"({b['ci_low']:.0%}–{b['ci_high']:.0%})") if b else "— | —"
        lines.append(
            f"| {g['generation']} | {g['correct']}/{g['tasks']} | {g['accuracy']:.0%} "
            f"({g['ci_low']:.0%}–{g['ci_high']:.0%}) | {g['members']} | {g['total_money']} | "
            f"{', '.join(map(str, g['wealth']))} | {', '.join(g['born']) or '—'} | "
            f"{', '.join(g['bankrupt']) or '—'} | {off} |")
    on = sum(g["correct"] for g in report["generations"])
    off_total = sum(g["correct"] for g in report.get("baseline", []))
    n = sum(g["tasks"] for g in report["generations"])
    a = report["audit"]
    lines.append("")
    lines.append(f"Total: economy on {on}/{n}, off {off_total}/{n}. Audit: "
                 f"{'conserved' if a['conserved'] else 'NOT conserved'} (expected "
                 f"{a['expected_total']}, actual {a['actual_total']}).")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(table(json.load(f)))
