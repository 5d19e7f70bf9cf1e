"""Every human view the CLI prints, with rich: the `ask` summary, the `logs show`
transcript, the `eval` table, and the listings. Each takes what `--json` prints.

Commands call `cli.core.emit(data, as_json, view)`, so the JSON and the human view always
show the same data.

Everything shown here came, in part, from a model, a file or a user: every string goes
through `shown` (printable text in a rich `Text`, never markup), and the console parses
no markup either, so a reply ending in "[/INST]" is shown, not read as a closing tag."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from minsky.inputs.safetext import printable
from minsky.organisations.drafts import describe_path


def shown(value: Any, style: str = "") -> Text:
    """`value` as a person may safely see it: its text with every terminal control shown
    as an escape (`safetext.printable`), as literal rich text (brackets are not markup)."""
    return Text(printable(str(value)), style=style)


def _short(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else "…" + line[-(width - 1) :]


# why a run has no answer, by its status
_NO_ANSWER = {
    "ok": "no answer could be read from the replies",
    "error": "the run failed",
    "timeout": "the run timed out",
    "interrupted": "the run was interrupted",
    "max_rounds": "the run stopped at its round budget",
    "max_tokens": "the run stopped at its token budget",
    "max_calls": "the run stopped at its budget of model calls",
}


def shown_answer(answer: Any, status: str | None = None, error: str | None = None) -> str:
    """An answer as a person reads it: no answer is "—" and why, never "None"."""
    if answer is not None:
        return str(answer)
    why = _NO_ANSWER.get(status or "", f"status {status}" if status else "no answer")
    if error:
        why += f": {_short(error, 120)}"
    return f"— ({why})"


def with_errors(n: int, failed: int) -> str:
    """A count of answered cases with the failed ones beside it: "198 + 2 errors"."""
    return f"{n} + {failed} error{'s' if failed != 1 else ''}" if failed else str(n)


def run_summary(result: dict[str, Any]) -> Group:
    """The `minsky ask` view: answer, who said what, votes, tokens and wall time."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("member", "answer", "round", "tokens", "said (end)"):
        table.add_column(col)
    tokens: dict[str, int] = {}
    for rnd in result["rounds"]:
        for t in rnd["turns"]:
            tokens[t["agent"]] = tokens.get(t["agent"], 0) + t["completion_tokens"]
    for m in result["members"]:
        table.add_row(
            shown(m["name"]), shown("—" if m["answer"] is None else m["answer"]),
            shown(m["round"]), shown(tokens.get(m["name"], 0)), shown(_short(m["text"], 60)),
        )
    tally = result.get("tally") or {}
    votes = ", ".join(f"{k}: {v}" for k, v in (tally.get("counts") or {}).items())
    u = result["usage"]
    status = result["status"]
    head = Text.assemble(
        ("answer: ", "bold"),
        shown(shown_answer(result["answer"], status), "bold green" if status == "ok" else "red")
    )
    lines: list[Any] = [head]
    if result.get("kind") == "text" and result.get("text"):
        lines.append(shown(result["text"]))
    if path := describe_path(result.get("detail")):
        lines.append(shown(path, style="cyan"))
    lines.append(table)
    if votes:
        abstained = tally.get("abstained", 0)
        lines.append(shown(f"votes: {votes}" + (f" (abstained: {abstained})" if abstained else "")))
    lines.append(
        shown(
            f"society {result['society']} · {len(result['rounds'])} round(s) · status {status} · "
            f"tokens {u['prompt_tokens']} prompt + {u['completion_tokens']} completion · "
            f"{result['wall_s']:.1f} s · run {result['run_id']}",
            style="dim",
        )
    )
    if result.get("error"):
        lines.append(shown(f"error: {result['error']}", style="red"))
    return Group(*lines)


def _groups(config: dict[str, Any] | None) -> dict[str, str]:
    """Member name → group, from a logged society config (copies named name-1, …)."""
    groups: dict[str, str] = {}
    for a in (config or {}).get("agents", []):
        names = [a["name"]] if a.get("count", 1) == 1 else [
            f"{a['name']}-{i}" for i in range(1, a["count"] + 1)
        ]
        for name in names:
            groups[name] = a.get("group", "member")
    return groups


def _call_panel(call: dict[str, Any], group: str, tools: list[dict[str, Any]]) -> Panel:
    """One chat call of a logged run: what it saw, what it said, the tools it called."""
    messages = call["request"]["messages"]
    saw = messages[-1]["content"] if messages else ""
    body = Text.assemble(("saw: ", "dim"), shown(_short(saw, 400), "dim"), "\n",
                         shown(call["text"] or ""))
    if call["error"]:
        body.append_text(shown(f"\nerror: {call['error']}", style="red"))
    for tool in tools:
        body.append_text(shown(f"\ntool {tool['tool']}({tool['input']}) → {tool['result']}",
                               style="red" if tool["error"] else "green"))
    title = (f"{call['agent']}" + (f" ({group})" if group and group != "member" else "")
             + f" · {call['purpose']} · {call['completion_tokens']} tok · "
             f"{call['latency_s']:.1f} s" + (" · replayed" if call["replayed"] else ""))
    if call.get("child_id"):  # a sub-society answered: its backend names its run
        title += f" · {call['backend']}"
    # a title given as a str would be read as markup: an agent named "[/b]" crashed it
    return Panel(body, title=shown(" ".join(title.split())), title_align="left")


def _score_line(score: dict[str, Any]) -> Text:
    """One scoring call of a logged run: what was scored, its log-likelihood, its tokens."""
    return shown(f"{score['agent']} · {score['purpose']} · score "
                 f"{_short(score['continuation'], 60)!r} after {_short(score['context'], 40)!r}"
                 f" → log p {score['total']:.2f} · {score['prompt_tokens']} tok"
                 + (" · replayed" if score["replayed"] else ""), style="dim")


def run_transcript(run: dict[str, Any]) -> Group:
    """The `minsky logs show` view: the mindstorm round by round, as a conversation."""
    parts: list[Any] = [
        Text.assemble(("run ", "bold"), shown(f"{run['id']}  society {run['society']}  "
                                              f"status {run['status']}")),
        Text.assemble(("task: ", "bold"), shown(run["question"])),
    ]
    groups = _groups(run.get("society_config"))
    tools_by_call: dict[str, list[dict[str, Any]]] = {}
    for tool in run.get("tool_calls", []):
        tools_by_call.setdefault(tool["call_id"], []).append(tool)
    labels = {r["round"]: r["label"] for r in run["rounds"]}
    last_round = None
    # chat calls and scoring calls, in the order of their rounds
    steps = sorted([(c["round"], c["idx"], 0, c) for c in run["calls"]]
                   + [(s["round"], s["idx"], 1, s) for s in run.get("scores", [])],
                   key=lambda step: step[:3])
    for round_no, _, is_score, step in steps:
        if round_no != last_round:
            last_round = round_no
            parts.append(shown(f"\n── round {last_round}: {labels.get(last_round, '')} ──",
                               style="bold cyan"))
        parts.append(_score_line(step) if is_score else _call_panel(
            step, groups.get(step["agent"], ""), tools_by_call.get(step["id"], [])))
    for event in run["events"]:
        d = event["data"]
        if event["kind"] == "ledger":
            parts.append(shown(f"ledger: {d['kind']} {d['src']} → {d['dst']} {d['amount']} "
                              f"cents ({d['reason']})", style="green"))
        elif event["kind"] == "ruling":
            parts.append(shown(f"ruling by {d['by']} on contract {d['contract']} "
                              f"({d['question']}): {d['decision']} — {d['reason']}",
                              style="cyan"))
        else:
            parts.append(shown(f"event (round {event['round']}): {event['kind']} {d}",
                              style="yellow"))
    for child in run.get("children", []):
        parts.append(shown(f"sub-society {child['society']}: run {child['id']} "
                          f"({child['status']}) → "
                          f"{shown_answer(child['answer'], child['status'])}",
                          style="magenta"))
    outcome = run.get("outcome") or {}
    tally = outcome.get("tally") or {}
    if tally.get("counts"):
        parts.append(shown("votes: " + ", ".join(f"{k}: {v}" for k, v in tally["counts"].items())))
    elif tally.get("scores") is not None and tally.get("candidates"):
        scored = zip(tally["candidates"], tally["scores"], strict=False)
        parts.append(shown(f"votes ({tally.get('rule')}): " +
                          ", ".join(f"{c}: {v:g}" for c, v in scored)))
    if path := describe_path(outcome.get("detail")):
        parts.append(shown(path, style="cyan"))
    parts.append(Text.assemble(("decision: ", "bold"),
                               shown(shown_answer(run["answer"], run["status"])),
                               f"   tokens {run['prompt_tokens']}+{run['completion_tokens']}"
                               f"   {run['wall_s'] or 0:.1f} s"))
    return Group(*parts)


def eval_table(summary: dict[str, Any]) -> Group:
    """The `minsky eval` summary: accuracy with intervals, tokens, time, paired tests.
    Failed cases are counted apart from the answered ones ("198 + 2 errors")."""
    table = Table(header_style="bold")
    for col in ("society", "n", "accuracy", "95% CI", "tokens", "tokens/case", "calls/case",
                "wall s"):
        table.add_column(col)
    for r in summary["results"]:
        answered = r["accuracy"] is not None  # None: every case of it failed
        table.add_row(*map(shown, (
            r["society"], with_errors(r["n"], r.get("failed", 0)),
            f"{r['accuracy']:.1%}" if answered else "—",
            f"{r['ci_low']:.1%}–{r['ci_high']:.1%}" if answered else "—",
            f"{r['total_tokens']:,}",
            f"{r['tokens_per_case']:.0f}" if answered else "—",
            "—" if r["calls_per_case"] is None else f"{r['calls_per_case']:.1f}",
            "—" if r["wall_s"] is None else f"{r['wall_s']:.0f}")))
    lines: list[Any] = [shown(f"{summary['bench']} · {summary['cases']} cases", style="bold"),
                        table]
    matched = [("compute-matched: ", p) for p in summary.get("matched", [])]
    for prefix, p in [("", p) for p in summary["paired"]] + matched:
        lines.append(shown(
            f"{prefix}{p['b']} vs {p['a']}: {p['difference']:+.1%} on {p['cases']} shared "
            f"cases (McNemar exact p = {p['p_value']:.3g}; {p['b01']} only {p['b']} right, "
            f"{p['b10']} only {p['a']} right)"))
    failed = {r["society"]: r["failed"] for r in summary["results"] if r.get("failed")}
    if failed:
        lines.append(shown("errors, left out of accuracy (a rerun retries them): " + ", ".join(
            f"{name} {n}" for name, n in failed.items()), style="yellow"))
    lines.append(shown(f"results: {summary['out']}", style="dim"))
    return Group(*lines)


def _listing(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> Table:
    """A borderless table of `rows` under a header row, one line each (long cells are
    cut, `--json` has them whole): (heading, key) per column; booleans as "*"."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    cells = [[("*" if r[key] else "") if isinstance(r[key], bool) else printable(str(r[key]))
              for _, key in columns] for r in rows]
    for k, (heading, _) in enumerate(columns):
        # only the last column (a description, a question) gives way to a narrow terminal
        last = k == len(columns) - 1
        width = None if last else max((len(c[k]) for c in cells), default=len(heading))
        table.add_column(heading, no_wrap=True, overflow="ellipsis", min_width=width,
                         max_width=90 if last else None)
    for row in cells:
        table.add_row(*(Text(c) for c in row))  # Text: a "[…]" in a cell is not markup
    return table


def societies_table(rows: list[dict[str, Any]]) -> Table:
    """`minsky societies`: the default of `ask` marked *."""
    return _listing(rows, [("", "default"), ("society", "name"),
                           ("organisation", "organisation"), ("members", "members"),
                           ("description", "description")])


def models_table(rows: list[dict[str, Any]]) -> Table:
    """`minsky models`: the default marked *, adapters after the shipped models; a model
    with only some of its chunk packages says how many, and `--verify` its checksum."""
    return _listing([{**r, "installed": _installed(r)} for r in rows],
                    [("", "default"), ("model", "name"), ("", "installed"),
                     ("description", "description")])


def _installed(row: dict[str, Any]) -> str:
    if "adapter" in row:
        return "adapter"
    chunks = row.get("chunks") or {}
    if not row["installed"]:
        found = chunks.get("found", 0)
        return f"{found}/{chunks['expected']} chunks" if found else "not installed"
    if row.get("sha256") and row.get("expected_sha256"):  # hashed under --verify
        return ("installed, sha256 ok" if row["sha256"] == row["expected_sha256"]
                else "installed, sha256 MISMATCH")
    return "installed"


def adapter_line(adapter: dict[str, Any]) -> str:
    """One line on a LoRA adapter: base, rank, size, when it was made, on how many rows."""
    meta = adapter["metadata"]
    parts = [f"LoRA on {adapter['base_name'] or adapter['architecture']}",
             f"rank {adapter['rank']}", f"{adapter['size'] / 1e6:.1f} MB"]
    parts += [f"{key} {meta[key]}" for key in ("created", "rows") if key in meta]
    return ", ".join(parts)


def plugins_table(rows: list[dict[str, Any]]) -> Table:
    """`minsky plugins`: what each plugin registers."""
    return _listing(rows, [("kind", "kind"), ("name", "name"), ("plugin", "plugin"),
                           ("description", "description")])


def runs_table(rows: list[dict[str, Any]]) -> Table:
    """`minsky logs list`: the latest runs, when each started (local time) and its
    tokens (prompt + completion)."""
    shown = [{**r, "question": " ".join(r["question"].split())[:60],
              "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
              "tokens": (r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0),
              "answer": "—" if r["answer"] is None else str(r["answer"])} for r in rows]
    return _listing(shown, [("run", "run_id"), ("date", "date"), ("society", "society"),
                            ("status", "status"), ("tokens", "tokens"), ("answer", "answer"),
                            ("question", "question")])


def arena_board(board: dict[str, Any]) -> Group:
    """`minsky arena`: ratings with intervals, Elo, W/T/L, and the judge's biases."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("contestant", "rating", "95% CI", "elo", "W/T/L"):
        table.add_column(col, justify="left" if col == "contestant" else "right")
    for r in board["leaderboard"]:
        table.add_row(*map(shown, (r["contestant"], f"{r['rating']:.1f}",
                                   f"[{r['ci_low']:.0f}, {r['ci_high']:.0f}]", f"{r['elo']:.0f}",
                                   f"{r['wins']}/{r['ties']}/{r['losses']}")))
    lines: list[Any] = [table]

    def share(bias: dict[str, Any]) -> str:
        return "-" if bias["share"] is None else f"{bias['share']:.0%}"

    lb, pb = board["length_bias"], board["position_bias"]
    lines.append(shown(
        f"order flips: {board['flip_rate']:.0%} of {board['pairs']} pairs; longer answer "
        f"won {share(lb)} of {lb['decisive']} decisive games; answer shown first won "
        f"{share(pb)} of {pb['decisive']} decisive verdicts · results {board['out']}"))
    failed = board.get("failed") or {}
    if failed.get("total"):
        parts = [f"{name} {n}" for name, n in failed["answers"].items()]
        if failed["judgments"]:
            parts.append(f"judge {failed['judgments']}")
        lines.append(shown("errors, left out of the games (a rerun retries them): "
                          + ", ".join(parts), style="yellow"))
    return Group(*lines)


def economy_report(report: dict[str, Any]) -> Group:
    """`minsky economy run`: accuracy per generation (and with the economy off), members,
    money, births and bankruptcies, and the audit."""
    base = {g["generation"]: g for g in report.get("baseline", [])}
    lines: list[Any] = []
    for g in report["generations"]:
        off = base.get(g["generation"])
        lines.append(shown(
            f"generation {g['generation']}: accuracy {g['accuracy']:.0%} "
            f"[{g['ci_low']:.0%}, {g['ci_high']:.0%}]"
            + (f" (economy off: {off['accuracy']:.0%})" if off else "")
            + f" · members {g['members']} · money {g['total_money']}"
            + (f" · born {', '.join(g['born'])}" if g["born"] else "")
            + (f" · bankrupt {', '.join(g['bankrupt'])}" if g["bankrupt"] else "")))
    a = report["audit"]
    lines.append(shown(f"audit: {'conserved' if a['conserved'] else 'NOT CONSERVED'} "
                      f"(expected {a['expected_total']}, actual {a['actual_total']}) · "
                      f"{report['out']}"))
    return Group(*lines)


def batch_summary(summary: dict[str, Any]) -> Text:
    """`minsky batch`: questions, answered by this run, failed, and where the rows are."""
    return shown(f"{summary['questions']} question(s) · {summary['answered_now']} answered "
                 f"now · {summary['failed']} failed · results {summary['out']}")


def audit_result(result: dict[str, Any]) -> Text:
    """`minsky economy audit`: whether the replayed books conserve money."""
    verdict = "conserved" if result["conserved"] else "NOT CONSERVED"
    return shown(f"{verdict}: {result['entries']} ledger entries replayed; money expected "
                 f"{result['expected_total']}, actual {result['actual_total']}",
                 style="" if result["conserved"] else "red")


def contamination_result(result: dict[str, Any]) -> Group:
    """`minsky contamination`: the permutation test's difference, t and verdict."""
    verdict = "evidence of contamination" if result["p_value"] < 0.05 else "no evidence"
    return Group(
        shown(f"{result['bench']}: {len(result['canonical'])} shards × {result['per_shard']} "
             f"examples, {result['permutations']} orders each"),
        shown(f"canonical − shuffled log-likelihood, mean {result['mean_difference']:+.2f} "
             f"nats; t = {result['t']:.2f} (df {result['df']}); p = {result['p_value']:.3g}"
             f" → {verdict} (at 0.05)"))


def mapping_table(data: dict[str, Any]) -> Table:
    """A flat summary (`minsky star mine|export|train`, `toolformer annotate`): one key
    and value a line; a nested mapping is one line of its own key=value pairs."""
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(shown(key), shown("—" if value is None else value))
    return table


def star_rounds(rows: list[dict[str, Any]]) -> Table:
    """`minsky star run`: one line a round, round 0 being the base member."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    heads = ("round", "problems", "kept", "trained on", "hinted", "train min", "tokens/s",
             "held-back accuracy")
    for head in heads:
        table.add_column(head)
    for r in rows:
        acc = "-" if r["heldout"] is None else f"{r['heldout']:.1%} of {r['heldout_n']}"
        table.add_row(*map(shown, (r["round"], r["problems"], r["kept"], r["union"],
                                   f"{r['hinted_share']:.0%}", f"{r['train_minutes']:.1f}",
                                   f"{r['tokens_per_s']:.1f}", acc)))
    return table


def print_renderable(renderable: Any) -> None:
    """Print a view on stdout; a str in it is shown as it is, never read as markup."""
    console = Console(markup=False)
    if not console.is_terminal:
        # piped into a file or a log, a table keeps its full cells rather than
        # being cut to fit rich's assumed 80 columns
        console.width = max(console.width, 160)
    console.print(renderable)
