"""Terminal views of runs, with rich: the compact `ask` summary and the `logs show` transcript."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def _short(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else "…" + line[-(width - 1) :]


def run_summary(result: dict[str, Any]) -> Group:
    """The `minsky ask` view: answer, who said what, votes, tokens and wall time."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("member", "answer", "round", "tokens", "said (end)"):
        table.add_column(col)
    tokens = {}
    for rnd in result["rounds"]:
        for t in rnd["turns"]:
            tokens[t["agent"]] = tokens.get(t["agent"], 0) + t["completion_tokens"]
    for m in result["members"]:
        table.add_row(
            m["name"], str(m["answer"]), str(m["round"]), str(tokens.get(m["name"], 0)),
            _short(m["text"], 60),
        )
    tally = result.get("tally") or {}
    votes = ", ".join(f"{k}: {v}" for k, v in (tally.get("counts") or {}).items())
    u = result["usage"]
    status = result["status"]
    head = Text.assemble(
        ("answer: ", "bold"), (str(result["answer"]), "bold green" if status == "ok" else "red")
    )
    lines = [head, table]
    if votes:
        abstained = tally.get("abstained", 0)
        lines.append(Text(f"votes: {votes}" + (f" (abstained: {abstained})" if abstained else "")))
    lines.append(
        Text(
            f"society {result['society']} · {len(result['rounds'])} round(s) · status {status} · "
            f"tokens {u['prompt_tokens']} prompt + {u['completion_tokens']} completion · "
            f"{result['wall_s']:.1f} s · run {result['run_id']}",
            style="dim",
        )
    )
    if result.get("error"):
        lines.append(Text(f"error: {result['error']}", style="red"))
    return Group(*lines)


def run_transcript(run: dict[str, Any]) -> Group:
    """The `minsky logs show` view: the run round by round, as a conversation."""
    parts: list[Any] = [
        Text.assemble(("run ", "bold"), run["id"], f"  society {run['society']}  "
                      f"status {run['status']}"),
        Text.assemble(("question: ", "bold"), run["question"]),
    ]
    labels = {r["round"]: r["label"] for r in run["rounds"]}
    last_round = None
    for call in run["calls"]:
        if call["round"] != last_round:
            last_round = call["round"]
            parts.append(Text(f"\n── round {last_round}: {labels.get(last_round, '')} ──",
                              style="bold cyan"))
        shown = call["request"]["messages"][-1]["content"] if call["request"]["messages"] else ""
        body = Text.assemble(
            ("asked: ", "dim"), (_short(shown, 300), "dim"), "\n", call["text"] or "",
        )
        if call["error"]:
            body.append(f"\nerror: {call['error']}", style="red")
        title = (f"{call['agent']} · {call['purpose']} · {call['completion_tokens']} tok · "
                 f"{call['latency_s']:.1f} s" + (" · replayed" if call["replayed"] else ""))
        parts.append(Panel(body, title=title, title_align="left"))
    for event in run["events"]:
        parts.append(Text(f"event (round {event['round']}): {event['kind']} {event['data']}",
                          style="yellow"))
    outcome = run.get("outcome") or {}
    tally = outcome.get("tally") or {}
    if tally.get("counts"):
        parts.append(Text("votes: " + ", ".join(f"{k}: {v}" for k, v in tally["counts"].items())))
    parts.append(Text.assemble(("decision: ", "bold"), str(run["answer"]),
                               f"   tokens {run['prompt_tokens']}+{run['completion_tokens']}"
                               f"   {run['wall_s'] or 0:.1f} s"))
    return Group(*parts)


def print_renderable(renderable: Any) -> None:
    Console().print(renderable)
