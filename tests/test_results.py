"""The resumable engine and its results files (issue 17: items 1, 4, 5, and duplicate ids).

Each test here failed before `minsky.results` existed: rows were matched by society name
and case id alone, a broken last line crashed every rerun, two writers both wrote, and a
repeated id dropped a case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.cli.batch import read_questions, run_batch
from minsky.errors import MinskyError
from minsky.evals.benchmarks import load_benchmark
from minsky.evals.harness import evaluate_society
from minsky.results import Item, open_results, read_rows, run_many
from minsky.runner import Runner
from minsky.society import from_dict


def gsm8k(path: Path, offset: int = 0, n: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"What is {i + offset} + 1?", "answer": f"#### {i + offset + 1}"}
            for i in range(1, n + 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def single(model: str = "fake:a"):
    return from_dict({"name": "single", "organisation": "single", "model": model,
                      "agents": [{"name": "solver"}]}, "s.toml")


def adder(request) -> str:
    n = int(request.messages[-1].content.split("What is ")[1].split(" +")[0])
    return f"The answer is {n + 1}."


def runner(*models: str) -> tuple[Runner, FunctionBackend]:
    backend = FunctionBackend(adder)
    return Runner(Backends(overrides={m: backend for m in models or ("fake:a",)})), backend


# -- 17.1: resume reuses the wrong results ------------------------------------------------


async def test_another_benchmark_under_the_same_ids_is_refused(tmp_path: Path) -> None:
    a = load_benchmark(gsm8k(tmp_path / "a" / "validation.jsonl"))
    b = load_benchmark(gsm8k(tmp_path / "b" / "validation.jsonl", offset=10))
    assert [c.id for c in a] == [c.id for c in b]  # the same ids, other questions
    r, backend = runner()
    out = tmp_path / "res.jsonl"
    await evaluate_society(r, single(), a, out)
    with pytest.raises(MinskyError, match="answered for a different question"):
        await evaluate_society(r, single(), b, out)
    assert len(backend.requests) == 3  # b's cases were not passed off as answered


async def test_another_model_under_the_same_society_name_is_refused(tmp_path: Path) -> None:
    cases = load_benchmark(gsm8k(tmp_path / "a.jsonl"))
    r, _ = runner("fake:a", "fake:b")
    out = tmp_path / "res.jsonl"
    await evaluate_society(r, single("fake:a"), cases, out)
    with pytest.raises(MinskyError, match="made with other settings.*fake:a.*fake:b"):
        await evaluate_society(r, single("fake:b"), cases, out)


async def test_rows_record_what_produced_them_and_old_rows_still_resume(tmp_path: Path) -> None:
    cases = load_benchmark(gsm8k(tmp_path / "a.jsonl"))
    r, backend = runner()
    out = tmp_path / "res.jsonl"
    await evaluate_society(r, single(), cases[:1], out, bench="a.jsonl")
    (row,) = read_rows(out)
    assert row["models"] == ["fake:a"] and row["bench"] == "a.jsonl"
    assert len(row["config"]) == len(row["case_sha"]) == 16
    # a row written before identities were recorded counts as done, as it always did
    old = {k: v for k, v in row.items() if k not in ("config", "models", "case_sha", "bench")}
    out.write_text(json.dumps({**old, "case": cases[1].id}) + "\n")
    await evaluate_society(r, single(), cases, out)
    assert sorted(x["case"] for x in read_rows(out)) == sorted(c.id for c in cases)
    assert len(backend.requests) == 1 + 2


def test_default_eval_out_names_the_benchmark_folder_and_model(tmp_path: Path,
                                                              minsky_home: Path) -> None:
    for folder in ("a", "b"):
        bench = gsm8k(tmp_path / folder / "validation.jsonl")
        done = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--society", "single",
                                         "--model", "echo:", "--json"])
        assert done.exit_code == 0, done.output
    names = sorted(p.name for p in (minsky_home / "evals").glob("*.jsonl"))
    assert names == ["a-validation-n3-sNone-echo_.jsonl", "b-validation-n3-sNone-echo_.jsonl"]


# -- 17.4: a half-written last line --------------------------------------------------------


async def test_a_half_written_last_line_is_cut_off_with_a_warning(tmp_path: Path,
                                                                  capsys) -> None:
    r, _ = runner()
    out = tmp_path / "res.jsonl"
    questions = [("1", "What is 1 + 1?"), ("2", "What is 2 + 1?")]
    await run_batch(r, single(), questions[:1], out)
    with out.open("a") as f:
        f.write('{"id": "2", "society": "sin')  # killed mid-write
    assert [x["id"] for x in read_rows(out)] == ["1"]  # read: skipped
    assert "half-written" in capsys.readouterr().err
    await run_batch(r, single(), questions, out)  # rerun: repaired, then resumed
    assert [x["id"] for x in read_rows(out)] == ["1", "2"]
    assert "removed it" in capsys.readouterr().err
    assert out.read_text().endswith("}\n")


def test_a_broken_line_in_the_middle_is_an_error_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    out.write_text('{"id": "1"}\n{"id": \n{"id": "3"}\n')
    with pytest.raises(MinskyError, match=r"res.jsonl:2: not a complete JSON row"):
        read_rows(out)


# -- 17.5: two writers ---------------------------------------------------------------------


async def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    r, _ = runner()
    with open_results(out), pytest.raises(MinskyError, match="being written by another"):
        await run_batch(r, single(), [("1", "What is 1 + 1?")], out)
    assert await run_batch(r, single(), [("1", "What is 1 + 1?")], out)  # free again


def test_a_second_writer_process_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "res.jsonl"
    script = ("import sys; from pathlib import Path; from minsky.results import open_results\n"
              "from minsky.errors import MinskyError\n"
              "try:\n    open_results(Path(sys.argv[1])).__enter__()\n"
              "except MinskyError as e:\n    print(e); sys.exit(2)\n")
    with open_results(out):
        done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2 and "another minsky process" in done.stdout


# -- 17.15: duplicate ids -----------------------------------------------------------------


async def test_repeated_question_ids_are_kept_apart_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "7", "question": "What is 1 + 1?"}\n'
                    '{"id": "7", "question": "What is 5 + 1?"}\n')
    questions = read_questions(path)
    assert [q for q, _ in questions] == ["7", "7#2"]
    r, backend = runner()
    out = tmp_path / "res.jsonl"
    await run_batch(r, single(), questions[:1], out)
    await run_batch(r, single(), questions, out)  # the second "7" is not taken as done
    assert sorted(x["answer"] for x in read_rows(out)) == ["2", "6"]


def test_repeated_benchmark_ids_are_made_distinct(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"id": "x", "q": "What is 1 + 1?", "a": "2"}\n'
                    '{"id": "x", "q": "What is 2 + 1?", "a": "3"}\n')
    cases = load_benchmark(path, mapping={"question": "q", "answer": "a", "id": "id"})
    assert [c.id for c in cases] == ["x", "x#2"]


async def test_run_many_refuses_repeated_keys(tmp_path: Path) -> None:
    r, _ = runner()
    with open_results(tmp_path / "r.jsonl") as results, \
            pytest.raises(MinskyError, match="repeated: k"):
        await run_many(r, single(), [Item("k", "a?"), Item("k", "b?")], results,
                       lambda row: row.get("id"), lambda it, res: {"id": it.key})


# -- a file swapped under a running writer (git stash / checkout, an editor's save) ---------


@pytest.mark.parametrize("swap", ["same copy", "older copy", "removed", "emptied in place"])
def test_rows_survive_the_file_being_replaced_while_a_run_writes(
        tmp_path: Path, swap: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res.jsonl"
    out.write_text('{"id": "0"}\n')
    with open_results(out) as results:
        results.append({"id": "1"})
        if swap == "emptied in place":  # `> FILE`: the same file, cut to nothing
            out.write_text("")
        else:
            # what `git stash` + `git stash pop` does: unlink the file, write a new one
            copy = out.read_text() if swap == "same copy" else '{"id": "0"}\n'
            out.unlink()
            if swap != "removed":
                out.write_text(copy)
        results.append({"id": "2"})
        results.append({"id": "3"})
    assert [r["id"] for r in read_rows(out)] == ["0", "1", "2", "3"]
    assert capsys.readouterr().err.count("replaced or removed") == 1  # warned once


def test_a_swap_after_the_last_row_is_rejoined_on_close(tmp_path: Path) -> None:
    out = tmp_path / "res.jsonl"
    with open_results(out) as results:
        results.append({"id": "1"})
        results.append({"id": "1"})  # identical rows are each kept
        results.append({"id": "2"})
        out.unlink()
        out.write_text('{"id": "1"}\n')  # an older copy, then no more rows
    assert [r["id"] for r in read_rows(out)] == ["1", "1", "2"]


def test_a_fresh_stream_swapped_for_an_old_file_is_rewritten_with_its_own_rows(
        tmp_path: Path) -> None:
    out = tmp_path / "stream.jsonl"
    out.write_text('{"id": "old-1"}\n{"id": "old-2"}\n')
    with open_results(out, fresh=True) as results:
        results.append({"id": "new-1"})
        out.unlink()
        out.write_text('{"id": "old-1"}\n{"id": "old-2"}\n')  # the old stream is back
        results.append({"id": "new-2"})
    assert [r["id"] for r in read_rows(out)] == ["new-1", "new-2"]


@pytest.mark.parametrize("swap", ["broken line", "directory"])
def test_a_replacement_that_cannot_be_read_back_stops_with_the_rows_rescued(
        tmp_path: Path, swap: str) -> None:
    out = tmp_path / "res.jsonl"
    with pytest.raises(MinskyError) as err, open_results(out) as results:
        results.append({"id": "1"})
        out.unlink()
        if swap == "directory":
            out.mkdir()
        else:
            out.write_text('<<<<<<< Updated upstream\n{"id": "1"}\n')
        results.append({"id": "2"})
    assert "\n" not in str(err.value) and "res.jsonl.rescued" in str(err.value)
    rescued = tmp_path / "res.jsonl.rescued"
    assert [r["id"] for r in read_rows(rescued)] == ["1", "2"]


def test_a_file_left_in_place_is_not_rejoined(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res.jsonl"
    with open_results(out) as results:
        results.append({"id": "1"})
        with out.open("a") as f:  # another appender on the same file: not a swap
            f.write('{"id": "x"}\n')
        results.append({"id": "2"})
    assert [r["id"] for r in read_rows(out)] == ["1", "x", "2"]
    assert "replaced" not in capsys.readouterr().err


async def test_a_failed_run_is_left_out_of_accuracy_and_retried_on_rerun(tmp_path: Path) -> None:
    from minsky.evals.harness import summarise

    bench = gsm8k(tmp_path / "gsm8k" / "test.jsonl")
    cases = load_benchmark(bench)
    out = tmp_path / "results.jsonl"
    run, backend = runner()
    await evaluate_society(run, single(), cases, out)
    rows = read_rows(out)
    # the second case timed out (a budget or a queue too long): no answer was given
    rows[1].update(status="timeout", answer=None, correct=False)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = summarise(read_rows(out), ["single"])["results"][0]
    assert (summary["n"], summary["correct"], summary["failed"]) == (2, 2, 1)
    calls = len(backend.requests)
    await evaluate_society(run, single(), cases, out)  # the rerun asks that case again
    assert len(backend.requests) == calls + 1
    summary = summarise(read_rows(out), ["single"])["results"][0]
    assert (summary["n"], summary["correct"], summary["failed"]) == (3, 3, 0)
