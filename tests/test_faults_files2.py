"""Fault injection, files (second round): never touch what is not ours, lock what is the
same file whatever it is called, one resume of a run at a time, a resume that finds its
nested societies from any folder, and a log in a read-only home that can still be read.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.messages import ChatReply, ChatRequest, Usage
from minsky.results import open_results, read_rows
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import from_dict
from minsky.view.source import RunQuery, list_runs, open_log


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result, *names: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


# --- an --out that is not a results file is refused before anything changes --------------

NOT_OURS = [
    b"my shopping list",  # one line, no newline: looks "half-written" to a naive repair
    b'{"note": "a JSON line"}\nthen my own last line',
    b"# notes\n\n- first\n- second",
    b"[1, 2, 3]\n",  # JSON, but not a row
    b'{"id": "1"}\n"a string"\n',
]


@pytest.mark.parametrize("content", NOT_OURS)
@pytest.mark.parametrize("via_link", [False, True])
def test_a_non_results_out_is_refused_and_left_byte_identical(
        tmp_path: Path, content: bytes, via_link: bool) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1+1?\n")
    mine = tmp_path / "notes.txt"
    mine.write_bytes(content)
    out = mine
    if via_link:
        out = tmp_path / "out.jsonl"
        out.symlink_to(mine)
    before = os.stat(mine)
    result = run("batch", str(questions), "--model", "echo:", "--society", "single",
                 "--out", str(out))
    one_line_error(result, str(out))
    assert mine.read_bytes() == content
    assert os.stat(mine).st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("content", NOT_OURS)
def test_open_results_refuses_a_non_results_file_before_changing_it(
        tmp_path: Path, content: bytes) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_bytes(content)
    for fresh in (False, True):
        with pytest.raises(MinskyError, match="notes.txt"), open_results(mine, fresh=fresh):
            pass
        assert mine.read_bytes() == content


def test_a_torn_row_is_still_repaired(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_bytes(b'{"id": "1"}\n{"id": "2", "ans')
    with open_results(out) as results:
        assert [r["id"] for r in results.rows] == ["1"]
    assert out.read_bytes() == b'{"id": "1"}\n'


# --- one results file, two names: one lock -----------------------------------------------


@pytest.fixture
def names(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Path]]]:
    real = tmp_path / "data" / "r.jsonl"
    real.parent.mkdir()
    real.write_text('{"id": "0"}\n')
    (tmp_path / "link.jsonl").symlink_to(real)
    os.link(real, tmp_path / "hard.jsonl")
    (tmp_path / "linked").symlink_to(real.parent, target_is_directory=True)
    yield real, {"symlink": tmp_path / "link.jsonl", "hard link": tmp_path / "hard.jsonl",
                 "linked folder": tmp_path / "linked" / "r.jsonl",
                 "dotted": real.parent / "." / ".." / "data" / "r.jsonl"}


@pytest.mark.parametrize("name", ["symlink", "hard link", "linked folder", "dotted"])
def test_a_second_name_for_a_results_file_meets_the_same_lock_in_a_thread(
        names: tuple[Path, dict[str, Path]], name: str) -> None:
    real, other = names[0], names[1][name]
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with open_results(real):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(MinskyError, match="being written by another"), \
                open_results(other):
            pass
    finally:
        release.set()
        thread.join()
    with open_results(other) as results:  # free again, and the same rows
        assert [r["id"] for r in results.rows] == ["0"]


@pytest.mark.parametrize("name", ["symlink", "hard link"])
def test_a_second_name_for_a_results_file_meets_the_same_lock_in_a_process(
        names: tuple[Path, dict[str, Path]], name: str) -> None:
    real, other = names[0], names[1][name]
    script = ("import sys; from pathlib import Path; from minsky.results import open_results\n"
              "from minsky.errors import MinskyError\n"
              "try:\n    open_results(Path(sys.argv[1])).__enter__()\n"
              "except MinskyError as e:\n    print(e); sys.exit(2)\n")
    with open_results(real) as results:
        done = subprocess.run([sys.executable, "-c", script, str(other)], capture_output=True,
                              text=True, timeout=60)
        results.append({"id": "1"})
    assert done.returncode == 2 and "another minsky process" in done.stdout
    assert [r["id"] for r in read_rows(real)] == ["0", "1"]  # nothing counted twice


# --- two resumes of one run: one computes, the other is refused ---------------------------

VOTE = {"name": "v", "organisation": "vote", "model": "fake:x",
        "agents": [{"name": "solver", "role": "You solve.", "count": 3}]}


class Down(FunctionBackend):
    """A server that fails every call."""

    def answer(self, request: ChatRequest) -> ChatReply:
        return ChatReply("", finish_reason="error", error="down")


def test_two_concurrent_resumes_compute_the_missing_rounds_once(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    society = from_dict(VOTE, "test")
    first = asyncio.run(Runner(Backends(overrides={"fake:x": Down(str)}), RunLog(path)).run(
        society, "What is 2+2?"))
    assert first.status == "error"  # every call failed: a resume must compute them all

    calls: list[ChatRequest] = []
    started = threading.Event()
    lock = threading.Lock()

    def answer(request: ChatRequest) -> str:
        with lock:
            calls.append(request)
        started.set()
        return "The answer is 4."

    outcomes: dict[str, object] = {}

    def resume(name: str) -> None:
        log = RunLog(path)
        backend = FunctionBackend(answer, delay_s=0.5)
        try:
            result = asyncio.run(Runner(Backends(overrides={"fake:x": backend}), log).run(
                society, "What is 2+2?", resume=first.run_id))
            outcomes[name] = result.status
        except MinskyError as err:
            outcomes[name] = str(err)
        finally:
            log.close()

    one = threading.Thread(target=resume, args=("one",))
    one.start()
    assert started.wait(30)
    resume("two")  # while the first is mid-round
    one.join()
    assert outcomes["one"] == "ok", outcomes
    assert "being resumed by another" in str(outcomes["two"]), outcomes
    assert len(calls) == 3  # the three votes, once
    # the lock is let go when the resume ends: a third resume replays, computing nothing
    log = RunLog(path)
    again = asyncio.run(Runner(Backends(overrides={"fake:x": FunctionBackend(answer)}),
                               log).run(society, "What is 2+2?", resume=first.run_id))
    assert again.status == "ok" and len(calls) == 3


def test_a_resume_of_a_run_whose_process_still_runs_it_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    log = RunLog(path)
    log.start_run("01J0000000000000000000000A", "v", {}, "q", "text", {})
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with log.db:
            log.db.execute("UPDATE runs SET pid = ?", (sleeper.pid,))
        with pytest.raises(MinskyError, match=f"still running \\(process {sleeper.pid}\\)"):
            log.replies_for_resume("01J0000000000000000000000A")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert log.replies_for_resume("01J0000000000000000000000A") == {}  # its process is gone


# --- a nested run resumed from another folder finds its child society ---------------------


def test_a_nested_run_resumes_from_another_folder(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "socs").mkdir(parents=True)
    (project / "socs" / "child.toml").write_text(
        'name = "child"\norganisation = "single"\nmodel = "echo:"\n[[agents]]\nname = "a"\n')
    (project / "socs" / "parent.toml").write_text(
        'name = "parent"\norganisation = "vote"\nmodel = "echo:"\n'
        '[[agents]]\nname = "team"\ncount = 2\nsociety = "child.toml"\n')
    monkeypatch.chdir(project)
    first = run("ask", "What is 2+2?", "--society", "socs/parent.toml", "--json")
    assert first.exit_code == 0, first.output
    run_id = first.stdout.split('"run_id": "')[1].split('"')[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = run("ask", "--resume", run_id, "--json")
    assert again.exit_code == 0, (again.output, again.stderr)
    assert "Traceback" not in again.output


# --- a log in a read-only home is read by logs and view -----------------------------------


def _read_only(folder: Path) -> str:
    """Make `folder` unwritable, even for root where chmod does not stop writes (the
    immutable attribute does); the mechanism used, or "" if none took."""
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if not os.access(folder, os.W_OK):
            return "chattr"
    folder.chmod(0o555)
    return "chmod" if not os.access(folder, os.W_OK) else ""


def _writable_again(folder: Path, how: str) -> None:
    if how == "chattr":
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    folder.chmod(0o755)


def test_a_log_in_a_read_only_home_is_read_by_logs_and_view(minsky_home: Path) -> None:
    minsky_home.mkdir(parents=True, exist_ok=True)
    log = RunLog(minsky_home / "logs.db")
    log.start_run("01J0000000000000000000000B", "soc", {}, "What is 2+2?", "number", {})
    log.finish_run("01J0000000000000000000000B", "ok", "4", {}, Usage(3, 1), 0.1)
    log.close()  # the last connection: SQLite removes the -wal and -shm files
    assert not (minsky_home / "logs.db-shm").exists()
    how = _read_only(minsky_home)
    try:
        # where neither mechanism can stop writes here, this still checks the readers work
        listed = run("logs", "list", "--json")
        assert listed.exit_code == 0, (how, listed.output, listed.stderr)
        assert "01J0000000000000000000000B" in listed.stdout
        shown = run("logs", "show", "01J0000000000000000000000B", "--json")
        assert shown.exit_code == 0, (how, shown.output, shown.stderr)
        viewer = open_log(minsky_home / "logs.db")
        assert list_runs(viewer, RunQuery())["total"] == 1
        viewer.close()
        if how:
            assert not (minsky_home / "logs.db-shm").exists()  # nothing was written there
    finally:
        _writable_again(minsky_home, how)


def test_reading_a_log_never_creates_one(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    one_line_error(run("logs", "list", "--log", str(missing)), str(missing))
    assert not missing.exists()
