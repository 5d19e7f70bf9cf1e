"""Mining: the member replies whose answer matches the gold answer become rationales.

STaR (Zelikman et al. 2022) keeps the rationales that reach the right answer. Here a
rationale is a member reply of a society run: a `solution()` program that minsky's own
interpreter ran to the gold number, or a chain of thought whose final answer is the gold
one. Replies come from three places, all read the same way:

- the run log (`--from-log`): every logged run whose question is a benchmark case;
- results files (`--from-results`): an evaluation's rows name their runs; the sample
  pools of `benchmarks/pool.py` carry their replies inline;
- a fresh run of a society over benchmark cases (`minsky star mine --bench`), through
  the results engine, so a killed mining run resumes.

Distinct reasoning paths matter more than their number (RFT, Yuan et al. 2023): programs
that are the same after renaming variables and dropping comments and whitespace are one.
Reporting problems are never mined: every case of the seed-0 reporting samples (every
seed-0 sample of up to `REPORT_SAMPLE` cases) is refused by id and by question text, since
earlier evaluation logs hold them.
"""

from __future__ import annotations

import functools
import io
import json
import keyword
import random
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minsky.answers import answers_match, extract_answer
from minsky.errors import MinskyError
from minsky.evals.benchmarks import load_benchmark
from minsky.inputs.records import jsonl_objects, jsonl_rows, lines
from minsky.organisations.answering import prompt
from minsky.organisations.base import Task
from minsky.organisations.consensus import CODE_OPEN, FENCE, program_examples
from minsky.organisations.weighing import copies_answer
from minsky.plugin_api import Case
from minsky.pyrun import extract_program, program_answer, run_program_guarded
from minsky.runlog import RunLog
from minsky.society import load
from minsky.star.rows import ChatTurn, Rationale, read_rows

REPORT_SAMPLE = 500  # seed-0 samples of up to this many cases are reporting samples
HINT = "(Hint: the answer is {gold}. Compute it from the quantities in the problem.)"

_HINT_START = HINT[: HINT.index("{gold}")]
# the hint as `hinted_question` appends it, whatever the gold answer's form
_HINTED = re.compile("\n\n" + re.escape(_HINT_START) + r"[^\n]*?"
                     + re.escape(HINT[HINT.index("{gold}") + len("{gold}"):]))


def normalise_question(text: str) -> str:
    """A question compared across files: case and whitespace do not count."""
    return " ".join(text.lower().split())


@dataclass
class Exclusion:
    """Problems never to train on: case ids and question texts."""

    ids: set[str] = field(default_factory=set)
    questions: set[str] = field(default_factory=set)

    def __contains__(self, case: tuple[str, str]) -> bool:
        case_id, question = case
        return case_id in self.ids or normalise_question(question) in self.questions

    def update(self, other: Exclusion) -> None:
        """Add another exclusion's problems to this one."""
        self.ids |= other.ids
        self.questions |= other.questions

    def add_cases(self, cases: Iterable[Case]) -> None:
        for c in cases:
            self.ids.add(c.id)
            self.questions.add(normalise_question(c.question))


def reporting_exclusion(bench: Path) -> Exclusion:
    """Every case of the seed-0 samples of `bench` of up to REPORT_SAMPLE cases, which
    every reported evaluation draws from (`load_benchmark(bench, limit, seed=0)`)."""
    cases = load_benchmark(bench)
    picked: set[int] = set()
    # subtle: random.sample draws a small sample by another method than a large one, so on
    # a file of under ~4,100 cases a seed-0 sample of 80 or 200 is not part of the one of
    # 500; every size is drawn as load_benchmark draws it (a fraction of a second)
    for k in range(1, min(REPORT_SAMPLE, len(cases)) + 1):
        picked.update(random.Random(0).sample(range(len(cases)), k))
    excluded = Exclusion()
    excluded.add_cases(cases[i] for i in picked)
    return excluded


def read_exclusion(path: Path) -> Exclusion:
    """Case ids to exclude: one per line, or JSONL rows with a `case` or `id` field (a
    results file works as it is)."""
    excluded = Exclusion()
    if path.suffix == ".jsonl":
        for n, row in jsonl_objects(path, "exclude file"):
            value = row.get("case", row.get("id")) if isinstance(row, dict) else None
            if not isinstance(value, str):
                raise MinskyError(f"{path}:{n}: expected an object with a string 'case' or "
                                  "'id'")
            excluded.ids.add(value)
        return excluded
    if not path.is_file():
        raise MinskyError(f"exclude file {path} does not exist")
    excluded.ids |= {line.strip() for line in lines(path) if line.strip()}
    return excluded


def program_key(program: str) -> str:
    """A program with its names numbered in order of appearance and its comments,
    docstrings and layout dropped: two programs with the same key are one path.
    (Lexing only: the text is never compiled.)"""
    names: dict[str, str] = {}
    out: list[str] = []
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(program).readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return " ".join(program.split())
    layout = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for i, tok in enumerate(tokens):
        if tok.type in layout:
            continue
        text = tok.string
        if tok.type == tokenize.NAME and not keyword.iskeyword(text) and text not in (
                "solution", "print", "round", "int", "float", "sum", "min", "max", "abs",
                "range", "len", "math"):
            text = names.setdefault(text, f"v{len(names)}")
        elif tok.type == tokenize.STRING and (i == 0 or tokens[i - 1].type in layout) and (
                tokens[i + 1].type in layout or tokens[i + 1].string == ";"):
            continue  # a string that is a statement of its own: a docstring
        out.append(text)
    return " ".join(out)


def cot_key(text: str) -> str:
    """A chain of thought compared as its words, case and layout ignored."""
    return " ".join(re.findall(r"\w+", text.lower()))


def judge_program(reply: str, question: str, gold: str, hinted: bool
                  ) -> tuple[str | None, str | None, str]:
    """(program, answer, why-not) for a programmer's reply; why-not is "" when the program
    ran to the gold answer (and, if hinted, computes it rather than writing it)."""
    program = extract_program(reply)
    if program is None:
        return None, None, "no program"
    answer = program_answer(run_program_guarded(program))
    if answer is None:
        return program, None, "program failed"
    if not answers_match(gold, answer, "number"):
        return program, answer, "wrong"
    if hinted and copies_answer(question, program, gold):
        return program, answer, "writes the hinted answer"
    return program, answer, ""


def judge_cot(reply: str, gold: str, finish: str) -> tuple[str | None, str]:
    """(answer, why-not) for a chain of thought."""
    if finish == "length":
        return None, "truncated"
    answer = extract_answer(reply, "number")
    if answer is None:
        return None, "no answer"
    return answer, "" if answers_match(gold, answer, "number") else "wrong"


@dataclass
class Reply:
    """One member reply, wherever it was read from, before it is judged."""

    case: Case
    messages: list[ChatTurn]
    text: str  # the whole reply, any prefix it continued included
    finish: str
    program: bool
    source: str
    run_id: str | None = None
    member: str = ""
    model: str = ""
    hinted: bool = False


def judge(r: Reply, round_no: int = 0) -> Rationale | None:
    """The reply as a rationale row (right or wrong), or None when it cannot be read."""
    question, gold = r.case.question, str(r.case.answer)
    messages = r.messages
    if r.hinted:  # the row is trained as if no hint had been given
        # the hint itself is cut: a logged question may differ from the case's in layout
        messages = [ChatTurn(role=m.role, content=_HINTED.sub("", m.content))
                    for m in messages]
        if any(_HINT_START in m.content for m in messages):
            return None  # a hint in another form: never trained on
    if r.program:
        if r.finish == "length":
            return None
        program, answer, why = judge_program(r.text, question, gold, r.hinted)
        if program is None or (why and answer is None):
            return None
        if why == "writes the hinted answer":
            return None
        reply, key = f"{CODE_OPEN}{program}{FENCE}", program_key(program)
        kind = "program"
    else:
        if r.hinted:
            return None  # a chain of thought told the answer can just say it
        answer, why = judge_cot(r.text, gold, r.finish)
        if answer is None:
            return None
        reply, key, kind = r.text.strip(), cot_key(r.text), "cot"
    return Rationale(case=r.case.id, question=question, gold=gold, kind=kind,
                     messages=messages, reply=reply, answer=answer, correct=not why,
                     hinted=r.hinted, source=r.source, run_id=r.run_id, member=r.member,
                     round=round_no, model=r.model, key=key)


def _hint_text(gold: str) -> str:
    return HINT.format(gold=gold)


def hinted_question(question: str, gold: str) -> str:
    """The question as asked for rationalization: the gold answer given as a hint."""
    return f"{question}\n\n{_hint_text(gold)}"


def _is_program_call(request: dict[str, Any]) -> bool:
    if request.get("prefix", "").startswith("```python"):
        return True
    last = request["messages"][-1]["content"] if request.get("messages") else ""
    return "solution()" in last


def log_replies(log: RunLog, cases: dict[str, Case], run_ids: Iterable[str] | None = None,
                source: str = "log") -> Iterator[Reply]:
    """The answer replies of logged runs whose question is one of `cases` (keyed by
    normalised question; a hinted question counts as its case, marked hinted)."""
    ids = log.run_ids(top=True) if run_ids is None else list(run_ids)
    for run_id in ids:
        try:
            run = log.get_run(run_id)
        except MinskyError:
            continue  # a results row whose log was cleared
        question = run["question"]
        case, hinted = cases.get(normalise_question(question)), False
        if case is None:
            base, _, hint = question.rpartition("\n\n" + _HINT_START)
            case, hinted = cases.get(normalise_question(base)), bool(hint)
        if case is None:
            continue
        models = run.get("models") or {}
        for call in run["calls"]:
            if call["purpose"] != "answer" or call["finish_reason"] == "error":
                continue
            request = call["request"]
            # the conversation as sent, worked examples (user, assistant turns) included
            messages = [ChatTurn(role=m["role"], content=m["content"])
                        for m in request["messages"]
                        if m["role"] in ("system", "user", "assistant")]
            if not messages or messages[-1].role != "user":
                continue
            yield Reply(case, messages, request.get("prefix", "") + call["text"] + (
                        FENCE if request.get("prefix") and call["finish_reason"] == "stop"
                        else ""), call["finish_reason"], _is_program_call(request),
                        source, run_id, call["agent"], _model_of(models, call["agent"]),
                        hinted)


def _model_of(models: Any, agent: str) -> str:
    if isinstance(models, dict):
        value = models.get(agent) or next(iter(models.values()), "")
        return str(value)
    return ""


def pool_replies(path: Path, cases: dict[str, Case]) -> Iterator[Reply]:
    """The samples of a `benchmarks/pool.py` file: its arms `pot*` are programs asked with
    the default society's programmer prompt (`pots*` after three worked programs, `pot1*`
    after one), `cot*` chains of thought with `single`'s.

    The prompt is rebuilt as the arm sent it, worked programs included: trained under a
    prompt it was not written for, a reply teaches its style where it does not belong
    (round 1 of docs/benchmarks.md "STaR": terse few-shot programs taught the zero-shot
    programmer to drop its commented steps, and it lost 4.5 points)."""
    by_id = {c.id: c for c in cases.values()}
    for row in jsonl_rows(path):
        case = by_id.get(str(row.get("case", "")))
        if case is None:
            continue
        arm = str(row.get("arm", ""))
        program = arm.startswith("pot")
        task = Task(case.question, "number")
        shown = 3 if arm.startswith("pots") else 1 if arm.startswith("pot1") else 0
        examples = [ChatTurn(role=m.role, content=m.content) for m in program_examples(shown)]
        messages = ([ChatTurn(role="system", content=_role("program")), *examples,
                     ChatTurn(role="user", content=prompt("program", task))] if program else
                    [ChatTurn(role="system", content=_role("single")),
                     ChatTurn(role="user", content=prompt("solve", task))])
        for s in row.get("samples", []):
            if not isinstance(s, dict) or not isinstance(s.get("text"), str):
                raise MinskyError(f"{path}: case {case.id}: field 'samples': expected "
                                  "objects with a string 'text'")
            text = s["text"]
            if program and not text.lstrip().startswith("```"):
                # pool.py stores a program as asked (fence, reply, fence); a bare one is
                # put in its code block
                text = CODE_OPEN + text + FENCE
            yield Reply(case, messages, text, s.get("finish", "stop"), program,
                        f"results:{path.name}", None, str(row.get("arm", "")),
                        str(row.get("model", "")))


@functools.cache
def _role(society: str) -> str:
    # the pools asked with the role prompts of these built-in societies' first agents
    return load(society).agents[0].role


def results_replies(path: Path, cases: dict[str, Case], log: RunLog | None) -> Iterator[Reply]:
    """Replies named by a results file: pool rows carry theirs; evaluation rows name runs
    in the run log."""
    if not path.is_file():
        raise MinskyError(f"results file {path} does not exist")
    rows = jsonl_rows(path)
    if not rows:
        raise MinskyError(f"results file {path} has no rows")
    if not all(isinstance(r, dict) for r in rows):
        raise MinskyError(f"results file {path}: expected one JSON object a line")
    if any("samples" in r for r in rows):
        yield from pool_replies(path, cases)
        return
    run_ids = [r["run_id"] for r in rows if r.get("run_id")]
    if not run_ids:
        raise MinskyError(f"{path}: its rows name no runs (no 'run_id' and no 'samples')")
    if log is None:
        raise MinskyError(f"{path}: its rows name runs, but there is no run log to read")
    yield from log_replies(log, cases, run_ids, source=f"results:{path.name}")


@dataclass
class MineStats:
    """What mining found, for the round table."""

    replies: int = 0
    problems: int = 0
    solved: int = 0
    kept: int = 0
    duplicates: int = 0
    hinted: int = 0
    excluded: int = 0
    wrong: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def collect(replies: Iterable[Reply], excluded: Exclusion, round_no: int = 0,
            existing: Iterable[Rationale] = (), bench: str = ""
            ) -> tuple[list[Rationale], MineStats]:
    """Judge replies into rows: right ones deduplicated per case and kind (against
    `existing` too), wrong ones kept once each for preference pairs."""
    stats = MineStats()
    rows: list[Rationale] = []
    seen = {(r.case, r.kind, r.key, r.correct) for r in existing}
    problems: set[str] = set()
    solved: set[str] = set()
    for reply in replies:
        if (reply.case.id, reply.case.question) in excluded:
            stats.excluded += 1
            continue
        stats.replies += 1
        problems.add(reply.case.id)
        row = judge(reply, round_no)
        if row is None:
            continue
        row.bench = bench
        ident = (row.case, row.kind, row.key, row.correct)
        if ident in seen:
            stats.duplicates += row.correct
            continue
        seen.add(ident)
        rows.append(row)
        if row.correct:
            stats.kept += 1
            stats.hinted += row.hinted
            solved.add(row.case)
        else:
            stats.wrong += 1
    stats.problems, stats.solved = len(problems), len(solved)
    return rows, stats


def cases_by_question(cases: Iterable[Case]) -> dict[str, Case]:
    """Cases keyed by their normalised question text (how logged runs are matched)."""
    return {normalise_question(c.question): c for c in cases}


def read_mined(path: Path) -> list[Rationale]:
    """A mined file's rows (missing file: none)."""
    return read_rows(path, Rationale, "mined file") if path.exists() else []


def append_mined(path: Path, rows: list[Rationale]) -> None:
    """Append rows to a mined file (one JSON line each), creating it."""
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.model_dump(), ensure_ascii=False) + "\n")
