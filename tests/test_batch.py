"""`minsky batch`: many questions, several at once, resumable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.cli.batch import finished_ids, read_questions, run_batch
from minsky.errors import MinskyError
from minsky.runner import Runner


def test_read_questions_from_jsonl_and_text(tmp_path: Path) -> None:
    jl = tmp_path / "q.jsonl"
    jl.write_text('{"id": "a", "question": "one?"}\n\n{"question": "two?"}\n')
    assert read_questions(jl) == [("a", "one?"), ("3", "two?")]
    txt = tmp_path / "q.txt"
    txt.write_text("first?\nsecond?\n")
    assert read_questions(txt) == [("1", "first?"), ("2", "second?")]


@pytest.mark.parametrize("line, message", [
    ("{not json", "q.jsonl:1: not valid JSON"),
    ('{"prompt": "x"}', "q.jsonl:1: expected an object with a string 'question'"),
    ('["x"]', "q.jsonl:1: expected an object"),
])
def test_bad_question_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(MinskyError, match=message):
        read_questions(path)


def test_missing_questions_file(tmp_path: Path) -> None:
    with pytest.raises(MinskyError, match="does not exist"):
        read_questions(tmp_path / "nope.jsonl")


async def test_batch_runs_concurrently_and_resumes(tmp_path: Path, make_society) -> None:
    backend = FunctionBackend(lambda r: "The answer is 7.", delay_s=0.3)
    society = make_society(organisation="single", agents=[{"name": "solo"}])
    runner = Runner(Backends(overrides={"fake:a": backend}))
    out = tmp_path / "out.jsonl"
    questions = [(str(i), f"What is {i}+{i}?") for i in range(4)]
    start = time.perf_counter()
    rows = await run_batch(runner, society, questions, out, concurrency=4, kind="number")
    # four questions, one round each, all in flight at once: about one delay, not four
    assert time.perf_counter() - start < 0.9
    assert sorted(r["id"] for r in rows) == ["0", "1", "2", "3"]
    assert all(r["answer"] == "7" and r["status"] == "ok" for r in rows)
    assert finished_ids(out, society.name) == {"0", "1", "2", "3"}
    again = await run_batch(runner, society, [*questions, ("4", "More?")], out, 4, "number")
    assert [r["id"] for r in again] == ["4"]
    assert len(out.read_text().splitlines()) == 5


def test_cli_batch_with_echo_backend(tmp_path: Path) -> None:
    path = tmp_path / "qs.jsonl"
    path.write_text('{"id": "q1", "question": "What is 2+3?"}\n')
    result = CliRunner().invoke(main, ["batch", str(path), "--society", "vote3", "--model",
                                       "echo:", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"questions": 1, "answered_now": 1, "failed": 0,
                       "out": str(tmp_path / "qs.vote3.results.jsonl")}
    row = json.loads((tmp_path / "qs.vote3.results.jsonl").read_text())
    assert row["id"] == "q1" and row["society"] == "vote3" and row["run_id"]
