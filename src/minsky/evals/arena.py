"""The arena: contestants answer open prompts, a judge compares pairs, ratings follow.

As in MT-Bench and Chatbot Arena (Zheng et al. 2023): every pair of contestants' answers
to a prompt is judged twice, once in each order, because judges prefer the first answer
they read; a verdict that flips with the order counts as a tie, and the flip rate is
reported. The judge is any society, asked the pairwise judge prompt as a three-way
choice (A, B, or C for a tie) — one model, or several that vote — optionally told a
constitution to judge by. Games become Bradley–Terry ratings (maximum likelihood, with
bootstrap intervals) and online Elo; the share of decisive games the longer answer won
shows the judge's length bias.

Answers and judgments are appended to a JSONL file as they finish; rerunning resumes.
"""

from __future__ import annotations

import asyncio
import itertools
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.evals.ratings import bootstrap_ratings, bradley_terry, elo_ratings
from minsky.evals.stats import length_bias, position_bias
from minsky.inputs.records import jsonl_objects, jsonl_rows
from minsky.organisations.judging import PAIR_TEMPLATE, combine, judge_question
from minsky.results import FAILED, Item, open_results, run_many
from minsky.runner import Runner, RunResult
from minsky.society import Society


def read_prompts(path: Path, field: str = "turns") -> list[tuple[str, str]]:
    """(id, prompt) pairs: MT-Bench/Vicuna `turns` (the first turn), or any string field."""
    rows = []
    for n, row in jsonl_objects(path, "prompts file"):
        value = row.get(field) if isinstance(row, dict) else None
        if isinstance(value, list) and value and isinstance(value[0], str):
            value = value[0]
        if not isinstance(value, str):
            raise MinskyError(f"{path}:{n}: field {field!r}: expected a string or a list "
                              "of strings")
        ident = row.get("question_id", row.get("id", n))
        rows.append((str(ident), value))
    return rows


def judge_template(path: Path | None, name: str = "pair-v2") -> dict[str, str]:
    """A pairwise judge prompt from an MT-Bench judge_prompts.jsonl, or the built-in one."""
    if path is None:
        return PAIR_TEMPLATE
    for row in jsonl_rows(path):
        if row.get("name") == name:
            _check_template(path, name, row)
            return {"system_prompt": row["system_prompt"],
                    "prompt_template": row["prompt_template"]}
    raise MinskyError(f"{path}: no judge prompt named {name!r}")


_PLACEHOLDERS = ("question", "answer_a", "answer_b")


def _check_template(path: Path, name: str, row: dict[str, object]) -> None:
    """Refuse a judge prompt that is not pairwise, or that would fail (or reach into
    objects) when filled in, before any contestant answers: only the plain placeholders
    {question}, {answer_a}, {answer_b}, with no format spec or conversion."""
    for key in ("system_prompt", "prompt_template"):
        if not isinstance(row.get(key), str):
            raise MinskyError(f"{path}: judge prompt {name!r}: field {key!r}: expected a string")
    where = f"{path}: judge prompt {name!r}: field 'prompt_template'"
    expected = f"expected only {', '.join('{' + p + '}' for p in _PLACEHOLDERS)}"
    try:
        fields = [(f, spec, conversion) for _, f, spec, conversion
                  in string.Formatter().parse(str(row["prompt_template"])) if f is not None]
    except ValueError as err:
        raise MinskyError(f"{where}: {err}") from None
    # the names as written ("answer_a" of {answer_a:>9} too): a prompt for one answer
    # is the wrong kind, whatever else is wrong with it
    if not {"answer_a", "answer_b"} <= {found.split(".")[0].split("[")[0]
                                        for found, _, _ in fields}:
        raise MinskyError(f"{path}: judge prompt {name!r} is not a pairwise one")
    for found, spec, conversion in fields:
        if found not in _PLACEHOLDERS:
            raise MinskyError(f"{where}: unknown placeholder {{{found}}}; {expected}")
        # a spec pads to any width ({answer_a:>99999999} is 100 MB a judgment), and a
        # nested one ({answer_a:{question}}) is filled from a contestant's text, so it
        # fails only once they have all answered
        if spec or conversion:
            shown = f"{found}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}"
            raise MinskyError(f"{where}: placeholder {{{shown}}} has a format spec or "
                              f"conversion; {expected}, as they are")


def answer_text(result: RunResult) -> str:
    """A contestant's full answer: the deciding reply, or the winning member's reply."""
    outcome = result.outcome
    if outcome.text:
        return outcome.text
    for m in outcome.members:
        if outcome.answer is not None and m.answer == outcome.answer:
            return m.text
    return outcome.members[0].text if outcome.members else ""


async def run_arena(
    runner: Runner,
    prompts: Sequence[tuple[str, str]],
    contestants: Sequence[Society],
    judge: Society,
    template: dict[str, str],
    out: Path,
    constitution: str | None = None,
    concurrency: int = 4,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Answer every prompt with every contestant, then judge every pair in both orders."""
    if len(contestants) < 2:
        raise MinskyError("the arena needs at least two contestants")
    names = [c.name for c in contestants]
    if len(set(names)) != len(names):
        raise MinskyError(f"contestants must have different names, got {names}")
    # the judge template's placeholders, checked before any contestant answers
    try:
        judge_question(template, "", "", "", constitution)
    except (KeyError, IndexError, ValueError) as err:
        raise MinskyError(f"judge prompt: bad placeholder {err}; expected {{question}}, "
                          "{answer_a} and {answer_b}") from None
    gate = asyncio.Semaphore(concurrency)  # every contestant's answers under one limit
    with open_results(out) as results:
        await asyncio.gather(*(
            run_many(runner, soc, [Item(pid, p, "text") for pid, p in prompts], results,
                     _answers_of(soc.name), lambda it, res: _answer_row(it, res, progress),
                     concurrency, gate=gate)
            for soc in contestants))
        answers = _answered(results.rows)
        games = []
        for (pid, prompt), (x, y) in itertools.product(prompts,
                                                       itertools.combinations(names, 2)):
            if (pid, x) not in answers or (pid, y) not in answers:
                continue  # a contestant's run failed: nothing to judge until a rerun answers
            for a, b in ((x, y), (y, x)):
                question = judge_question(template, prompt, answers[(pid, a)],
                                          answers[(pid, b)], constitution)
                games.append(Item(f"{pid}|{a}|{b}", question, "choice",
                                  fields={"prompt": pid, "a": a, "b": b}))
        await run_many(
            runner, judge, games, results,
            lambda r: (f"{r['prompt']}|{r['a']}|{r['b']}" if r.get("kind") == "judgment"
                       else None),
            lambda it, res: _judgment_row(it, res, progress), concurrency)


def _last(rows: Sequence[dict[str, Any]], kind: str,
          key: Callable[[dict[str, Any]], tuple[str, ...]]) -> dict[tuple[str, ...], Any]:
    """The last row of each key among rows of `kind` (a rerun appends a retried run)."""
    return {key(r): r for r in rows if r.get("kind") == kind}


def _answered(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], str]:
    """(prompt, contestant) → answer text, for the answers whose run did not fail."""
    last = _last(rows, "answer", lambda r: (r["prompt"], r["contestant"]))
    return {k: r["text"] for k, r in last.items() if r.get("status") not in FAILED}


def _judged(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], str | None]:
    """(prompt, a, b) → verdict, for the judgments whose run did not fail (a failed
    judgment is no verdict, not a tie)."""
    last = _last(rows, "judgment", lambda r: (r["prompt"], r["a"], r["b"]))
    return {k: r["verdict"] for k, r in last.items() if r.get("status") not in FAILED}


def failures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Runs that failed and are not yet retried: contestant → failed answers, and the
    count of failed judgments; `total` of both."""
    answers: dict[str, int] = {}
    for (_, name), r in _last(rows, "answer", lambda r: (r["prompt"], r["contestant"])).items():
        if r.get("status") in FAILED:
            answers[name] = answers.get(name, 0) + 1
    judged = _last(rows, "judgment", lambda r: (r["prompt"], r["a"], r["b"])).values()
    judgments = sum(r.get("status") in FAILED for r in judged)
    return {"answers": answers, "judgments": judgments,
            "total": sum(answers.values()) + judgments}


def arena_done(rows: Sequence[dict[str, Any]]) -> int:
    """Answers and judgments already in a results file that a rerun will not run again
    (the ones whose run failed are retried)."""
    return len(_answered(rows)) + len(_judged(rows))


def _answers_of(name: str) -> Callable[[dict[str, Any]], str | None]:
    """The key of a row that is `name`'s answer to a prompt (None for any other row)."""
    return lambda r: (r["prompt"] if r.get("kind") == "answer"
                      and r.get("contestant") == name else None)


def _answer_row(item: Item, result: RunResult,
                progress: Callable[[str], None] | None) -> dict[str, Any]:
    if progress:
        failed = f": failed ({result.status})" if result.status in FAILED else ""
        progress(f"answer {item.key} by {result.society}{failed}")
    row = {"kind": "answer", "prompt": item.key, "contestant": result.society,
           "text": answer_text(result), "tokens": result.usage.total_tokens,
           "wall_s": round(result.wall_s, 2), "run_id": result.run_id,
           "status": result.status}
    if result.error:
        row["error"] = result.error  # why a contestant failed, kept beside its empty answer
    return row


def _judgment_row(item: Item, result: RunResult,
                  progress: Callable[[str], None] | None) -> dict[str, Any]:
    verdict = result.answer if result.answer in ("A", "B", "C") else None
    if progress:
        f = item.fields
        shown = verdict or f"— (no verdict; status {result.status})"
        progress(f"judge {f['prompt']}: {f['a']} vs {f['b']} → {shown}")
    row = {"kind": "judgment", "verdict": verdict, "run_id": result.run_id,
           "status": result.status, "tokens": result.usage.total_tokens,
           "wall_s": round(result.wall_s, 2)}
    if result.error:
        row["error"] = result.error
    return row


def leaderboard(rows: Sequence[dict[str, Any]], n_boot: int = 200,
                seed: int = 0) -> dict[str, Any]:
    """Games from both-order judgments; Bradley–Terry with CIs, Elo, flips, length bias.
    Failed runs are no games; `failed` counts them (`failures`)."""
    answers = _answered(rows)
    verdicts = _judged(rows)
    games: list[tuple[str, str, float]] = []
    lengths: list[tuple[int, int, float]] = []
    flips = pairs = 0
    for (pid, a, b), ab in sorted(verdicts.items()):
        if a > b or (pid, b, a) not in verdicts:
            continue  # each unordered pair once, and only when both orders are judged
        score, flipped = combine(ab, verdicts[(pid, b, a)])
        games.append((a, b, score))
        lengths.append((len(answers.get((pid, a), "")), len(answers.get((pid, b), "")), score))
        pairs += 1
        flips += flipped
    failed = failures(rows)
    if not games:
        errored = (f"; {failed['total']} run(s) failed, and rerunning the same command "
                   "retries them" if failed["total"] else "")
        raise MinskyError(f"no pair has been judged in both orders yet{errored}")
    bt = bradley_terry(games)
    ci = bootstrap_ratings(games, n_boot=n_boot, seed=seed)
    elo = elo_ratings(games)
    table = []
    for name in sorted(bt, key=lambda n: -bt[n]):
        mine = [(s if a == name else 1 - s) for a, b, s in games if name in (a, b)]
        table.append({"contestant": name, "rating": round(bt[name], 1),
                      "ci_low": round(ci[name][0], 1), "ci_high": round(ci[name][1], 1),
                      "elo": round(elo[name], 1), "games": len(mine),
                      "wins": sum(x == 1 for x in mine), "ties": sum(x == 0.5 for x in mine),
                      "losses": sum(x == 0 for x in mine)})
    return {"leaderboard": table, "pairs": pairs, "flip_rate": flips / pairs,
            "length_bias": length_bias(lengths),
            "position_bias": position_bias(list(verdicts.values())), "failed": failed}


def preference_pairs(rows: Sequence[dict[str, Any]], prompts: dict[str, str]
                     ) -> list[dict[str, Any]]:
    """DPO rows from the verdicts (RLAIF): for every pair judged in both orders with the
    same winner both times, the winner's answer is `chosen`, the loser's `rejected`, and
    the prompt is the user turn. A tie or a verdict that flips with the order is no pair."""
    answers = {k: text for k, text in _answered(rows).items() if text}
    verdicts = _judged(rows)
    out = []
    for (pid, a, b), ab in sorted(verdicts.items()):
        if a > b or (pid, b, a) not in verdicts or pid not in prompts:
            continue
        score, _ = combine(ab, verdicts[(pid, b, a)])
        if score == 0.5 or (pid, a) not in answers or (pid, b) not in answers:
            continue
        win, lose = (a, b) if score == 1.0 else (b, a)
        out.append({"prompt": [{"role": "user", "content": prompts[pid]}],
                    "chosen": [{"role": "assistant", "content": answers[(pid, win)]}],
                    "rejected": [{"role": "assistant", "content": answers[(pid, lose)]}],
                    "case": pid, "chosen_by": win, "rejected_by": lose, "source": "arena"})
    return out


def plot_leaderboard(board: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """A PNG bar chart of Bradley–Terry ratings with their bootstrap intervals."""
    try:
        import matplotlib
    except ImportError:
        raise MinskyError("--plot needs matplotlib: pip install 'minsky[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.6 * len(board) + 1.5))
    names = [r["contestant"] for r in board][::-1]
    ratings = [r["rating"] for r in board][::-1]
    err = [[r["rating"] - r["ci_low"] for r in board][::-1],
           [r["ci_high"] - r["rating"] for r in board][::-1]]
    ax.barh(names, ratings, xerr=err, capsize=4, color="#4c72b0")
    ax.set_xlim(min(r["ci_low"] for r in board) - 50, max(r["ci_high"] for r in board) + 50)
    ax.set_xlabel("Bradley–Terry rating (Elo scale), 95 % bootstrap interval")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
