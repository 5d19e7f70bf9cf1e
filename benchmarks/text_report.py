"""Issue 31's report: each text path of the default society against `single`, from the
arena results file that `benchmarks/text_arena.sh` appends to.

For each contestant other than `single`: prompts judged in both orders, wins / ties /
losses against single, the share of non-tied verdicts it won (Wilson interval, two-sided
sign test), Bradley–Terry ratings of the two with bootstrap intervals, the judge's flip
rate, position and length bias, and per prompt its tokens and seconds beside single's
(the tokens of the runs themselves, judge excluded; seconds as the run took them, with
the concurrency the arena ran at).

    python benchmarks/text_report.py [benchmarks/results/text/arena.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from minsky.answers import normalise_text
from minsky.errors import MinskyError
from minsky.evals.arena import leaderboard
from minsky.evals.stats import mcnemar, sign_test_p, wilson_interval
from minsky.inputs.records import jsonl_rows
from minsky.runlog import RunLog

RESULTS = Path(__file__).parent / "results" / "text" / "arena.jsonl"
BASE = "single"


def _pair_rows(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The answers of single and `name`, and the judgments between the two."""
    keep = {BASE, name}
    return [r for r in rows if (r.get("kind") == "answer" and r.get("contestant") in keep)
            or (r.get("kind") == "judgment" and {r.get("a"), r.get("b")} == keep)]


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 1) if xs else None


def margins(rows: list[dict[str, Any]], name: str, log: RunLog) -> dict[str, Any]:
    """A second reading of the same verdicts: the judge's scores of A and B (log-
    probabilities averaged over the label shifts, from the run log) in both orders,
    (A − B shown one way) − (A − B shown the other way), so the position preference
    cancels and every pair gets a side; the share of pairs where `name` is preferred."""
    scores: dict[tuple[str, str, str], float] = {}
    for r in rows:
        if r.get("kind") != "judgment" or {r.get("a"), r.get("b")} != {BASE, name}:
            continue
        try:
            tally = (log.get_run(r["run_id"]).get("outcome") or {}).get("tally") or {}
        except MinskyError:  # a judgment whose run is not in this log
            continue
        got = tally.get("scores") or {}
        if "A" in got and "B" in got:
            scores[(r["prompt"], r["a"], r["b"])] = got["A"] - got["B"]
    won = n = tied = 0
    for (pid, a, b), first in scores.items():
        if a != name or (pid, b, a) not in scores:
            continue
        n += 1
        margin = first - scores[(pid, b, a)]
        won += margin > 0
        tied += margin == 0
    low, high = wilson_interval(won, n)
    return {"pairs": n, "preferred": won, "even": tied,
            "share": round(won / n, 3) if n else None,
            "ci": [round(low, 3), round(high, 3)],
            "sign_test_p": round(sign_test_p(won, n), 4) if n else None}


def report(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    sub = _pair_rows(rows, name)
    board = leaderboard(sub, n_boot=1000, seed=0)
    me = next((r for r in board["leaderboard"] if r["contestant"] == name), None)
    if me is None:
        raise ValueError(f"no game of {name} against {BASE} judged in both orders yet")
    decisive = me["wins"] + me["losses"]
    low, high = wilson_interval(me["wins"], decisive)
    p = round(sign_test_p(me["wins"], decisive), 4) if decisive else None
    judged = {r["prompt"] for r in sub if r.get("kind") == "judgment"}
    answers = {(r["prompt"], r["contestant"]): r for r in sub if r.get("kind") == "answer"}
    both = [pid for pid in sorted(judged)
            if (pid, name) in answers and (pid, BASE) in answers]

    def per(who: str, key: str) -> list[float]:
        return [float(answers[(pid, who)].get(key) or 0) for pid in both]

    tokens, base_tokens = per(name, "tokens"), per(BASE, "tokens")
    chars, base_chars = ([len(answers[(pid, w)].get("text", "")) for pid in both]
                         for w in (name, BASE))
    return {
        "contestant": name, "prompts": me["games"], "wins": me["wins"], "ties": me["ties"],
        "losses": me["losses"],
        "won_of_decisive": round(me["wins"] / decisive, 3) if decisive else None,
        "ci": [round(low, 3), round(high, 3)], "sign_test_p": p,
        "rating": me["rating"], "rating_ci": [me["ci_low"], me["ci_high"]],
        "flip_rate": round(board["flip_rate"], 3),
        "first_shown_won": board["position_bias"].get("share"),
        "longer_won": board["length_bias"].get("share"),
        "tokens_per_prompt": _mean(tokens), "single_tokens_per_prompt": _mean(base_tokens),
        "token_ratio": round(sum(tokens) / sum(base_tokens), 2) if sum(base_tokens) else None,
        "s_per_prompt": _mean(per(name, "wall_s")),
        "single_s_per_prompt": _mean(per(BASE, "wall_s")),
        "answer_chars": _mean([float(c) for c in chars]),
        "single_answer_chars": _mean([float(c) for c in base_chars]),
    }


def exact(path: Path) -> dict[str, Any]:
    """The second check (benchmarks/text_exact.sh): each society's exact-match accuracy
    on the cases every society answered without failing, a lenient reading (the gold
    text inside the answer), tokens per case, and McNemar against single."""
    rows = [r for r in jsonl_rows(path) if "society" in r and "case" in r]
    last = {(r["case"], r["society"]): r for r in rows}
    names = sorted({s for _, s in last})
    cases = sorted(c for c in {c for c, _ in last}
                   if all(last.get((c, n), {}).get("status") == "ok" for n in names))
    out: dict[str, Any] = {"cases": len(cases), "societies": {}}
    right = {n: [bool(last[(c, n)]["correct"]) for c in cases] for n in names}
    for n in sorted(names, key=lambda n: n != BASE):  # single first: the others cite it
        got = [last[(c, n)] for c in cases]
        inside = [bool((g := normalise_text(r["gold"])) and g in (r.get("answer") or ""))
                  for r in got]
        out["societies"][n] = {
            "exact": round(sum(right[n]) / len(cases), 3) if cases else None,
            "exact_n": sum(right[n]), "contains_gold": sum(inside),
            "tokens_per_case": _mean([float(r["prompt_tokens"] + r["completion_tokens"])
                                      for r in got]),
            "s_per_case": _mean([float(r["wall_s"]) for r in got])}
        if n != BASE and BASE in right:
            m = mcnemar(right[BASE], right[n])
            out["societies"][n]["mcnemar"] = {"b01": m.b01, "b10": m.b10,
                                              "p": round(m.p_value, 4)}
            base_inside = out["societies"].get(BASE, {}).get("contains_gold")
            out["societies"][n]["single_contains_gold"] = base_inside
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="?", type=Path, default=RESULTS)
    ap.add_argument("--log", type=Path, default=RESULTS.with_name("runs.db"),
                    help="the run log of the arena's runs, for the judge's scores")
    ap.add_argument("--exact", type=Path, default=RESULTS.with_name("csqa.jsonl"),
                    help="the second check's results (benchmarks/text_exact.sh)")
    ap.add_argument("--range", default=None, metavar="A:B",
                    help="only the prompts A+1..B in prompts-all.jsonl's order (e.g. 0:40)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = list(jsonl_rows(args.results))
    if args.range:
        low, high = (int(x) for x in args.range.split(":"))
        order = [r["id"] for r in jsonl_rows(RESULTS.with_name("prompts-all.jsonl"))]
        keep = set(order[low:high])
        rows = [r for r in rows if r.get("prompt") in keep]
    names = sorted({r["contestant"] for r in rows if r.get("kind") == "answer"} - {BASE})
    out = []
    for name in names:
        try:
            out.append(report(rows, name))
            if args.log.exists():
                out[-1]["by_margin"] = margins(rows, name, RunLog.read_only(args.log))
        except (ValueError, MinskyError) as err:  # a contestant not yet judged
            print(f"{name}: {err}", file=sys.stderr)
    second = exact(args.exact) if args.exact.exists() else None
    if args.json:
        print(json.dumps({"arena": out, "exact": second}, indent=1))
        return
    cols = ["contestant", "prompts", "wins", "ties", "losses", "won_of_decisive", "ci",
            "sign_test_p", "rating", "rating_ci", "flip_rate", "first_shown_won",
            "longer_won", "tokens_per_prompt", "single_tokens_per_prompt", "token_ratio",
            "s_per_prompt", "single_s_per_prompt", "answer_chars", "single_answer_chars",
            "by_margin"]
    for row in out:
        print("\n".join(f"{c:>26}: {row.get(c)}" for c in cols), end="\n\n")
    if second:
        print(json.dumps(second, indent=1))


if __name__ == "__main__":
    main()
