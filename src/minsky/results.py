"""Results files and the one resumable engine that runs a society over many items.

`batch`, `eval`, `arena` and the economy append one JSON line per finished item to a
results file, so a killed run loses nothing and a rerun skips what is done. This module
is that machinery, written once:

- **It knows what produced each row.** A row carries its society's `config` (a hash of
  the society as run: members, roles, options and resolved models), its `models`, and
  a `case_sha` (a hash of the item's question and gold answer). A rerun reuses a row only
  when all three match; a row of the same society name made with other settings (another
  `--model`, an edited society file) or for another question under the same id (another
  benchmark file) stops the run with one line naming the file, instead of being passed
  off as this run's result. Rows written before these fields existed carry none of them:
  they are taken as done by the society of their name, as they always were.
- **One writer at a time, whatever the file is called.** While a run appends, it holds
  an exclusive lock on the file itself (so a hard link, a symbolic link or `./x` for `x`
  meet the same lock) and on `FILE.lock` beside the file's resolved path (which outlives
  the file being replaced); a second writer, process or thread, stops at once with a
  clear message.
- **Never touch what is not ours.** A `--out` that is not a regular file, or an existing
  file that is not a results file (a line that is not one JSON object), is refused before
  anything in it is changed; only a last line that starts like a row is taken for a
  half-written one.
- **Appends are whole lines.** A row is one `write` of its complete line to a file
  opened for appending, flushed before the next.
- **A file replaced under a run is re-joined.** `git stash`, `git checkout` or an editor
  may swap the file for a new one while a run appends; the run would go on writing to
  the old, unlinked file and every row after the swap would vanish with it. Before each
  append the writer checks that its handle is still the file at the path; when it is
  not (or the file was cut shorter than what it wrote), it warns, opens the file at the
  path (creating it if it is gone) and writes back every row it knows of that the new
  file lacks — for a fresh stream (an economy's), it rewrites the file with this run's
  rows. The same check runs when the file is closed. A new file that cannot be read
  back (a broken line, a directory in its place) stops the run with one line, after
  every row is written to `FILE.rescued`.
- **One case's failure is its own.** The items run under one `asyncio.gather`; an
  exception from one run would cancel all the others and lose their work. `run_case`
  turns an unexpected failure of one run into that case's `error` result; a
  `MinskyError` (a problem with the user's setup, the same for every case) still ends
  the command.
- **A half-written last line** (a full disk, a kill mid-write) is cut off with a warning
  when the file is next opened for writing (once it is locked, and known to be a results
  file), and skipped with a warning when it is read; a broken line anywhere else is an
  error naming the file and line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from minsky.answers import AnswerKind
from minsky.errors import MinskyError
from minsky.inputs.records import jsonl_rows
from minsky.inputs.safetext import valid
from minsky.messages import Usage
from minsky.organisations.base import Outcome
from minsky.runner import Runner, RunResult
from minsky.society import Budget, Society

__all__ = ["Item", "Results", "check_out", "open_results", "read_rows", "run_case", "run_many",
           "society_identity"]

try:  # POSIX advisory locks; without them (Windows) a second writer is not detected
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None  # type: ignore[assignment]


# run statuses that mean the run failed (not that the society answered, right or wrong)
FAILED = frozenset({"error", "timeout", "interrupted"})


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _sha(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# budget fields a society file gained after results files began to record identities
_ADDED_BUDGET_FIELDS = ("max_calls",)


def society_identity(society: Society) -> dict[str, Any]:
    """What a row records of the society that produced it: name, config hash, models."""
    agents = [(a.name, a.role, a.model, a.options.model_dump(), a.group, a.tools,
               society_identity(a.society)["config"] if a.society else None)
              for a in society.agents]
    config = society.config.model_dump(exclude={"description", "agents", "model"})
    for added in _ADDED_BUDGET_FIELDS:
        # added after results were first written: at its default, left out of the hash,
        # so earlier results files still name the same society
        if config["budget"][added] == Budget.model_fields[added].default:
            del config["budget"][added]
    return {"society": society.name, "config": _sha([config, agents]),
            "models": sorted({a.model for a in society.agents})}


def case_sha(question: str, gold: Any = None) -> str:
    """A hash of what an item asks (and expects), so one id cannot stand for two items."""
    return _sha([question, gold])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of results file `path` (none if it does not exist); a half-written last
    line is skipped with a warning, a broken line elsewhere is an error naming it."""
    return jsonl_rows(path)


def _is_row(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _torn_tail(path: Path, data: bytes) -> int | None:
    """Where the half-written last line of results file `data` begins (-1: a whole row
    that lost its newline; None: nothing to repair). Data that is not a results file is
    a MinskyError here, so the caller refuses it before changing anything."""
    head, newline, tail = data.rpartition(b"\n")
    for number, line in enumerate(head.split(b"\n") if newline else [], 1):
        if line.strip() and not _is_row(line):
            raise MinskyError(f"{path}:{number}: not a complete JSON row, so not a results "
                              "file; it was left as it is (use another --out, or remove or "
                              "fix that line)")
    if not tail.strip():
        return None
    if _is_row(tail):
        return -1
    # subtle: only what starts like a row can be a row cut short; any other last line
    # is someone else's text, and cutting it would destroy it
    if tail.lstrip().startswith(b"{"):
        return len(head) + 1 if newline else 0
    raise MinskyError(f"{path}: its last line is not a JSON row, so it is not a results "
                      "file; it was left as it is (use another --out)")


def check_out(path: Path) -> None:
    """Refuse, before any work, an `--out` that exists and is not a results file (or
    not a regular file); it is only read. `open_results` checks again once locked."""
    try:
        info = os.stat(path)
    except OSError:
        return  # nothing there yet (or a dangling link): the run creates it
    if stat.S_ISDIR(info.st_mode):
        raise MinskyError(f"results file {path} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise MinskyError(f"results file {path} is not a regular file; left as it is "
                          "(use another --out)")
    try:
        _torn_tail(path, path.read_bytes())
    except OSError as err:
        raise MinskyError(f"results file {path}: cannot read it ({err.strerror})") from None


def _repair(path: Path, handle: IO[bytes]) -> None:
    """Cut a half-written last line off the results file open (locked) as `handle`."""
    handle.seek(0)
    data = handle.read()
    cut = _torn_tail(path, data)
    if cut == -1:
        handle.write(b"\n")  # a whole row that only lost its newline
    elif cut is not None:
        warn(f"{path}: the last line was half-written ({len(data) - cut} bytes); removed it")
        handle.truncate(cut)
    handle.flush()
    handle.seek(0, os.SEEK_END)


def _lock_name(path: Path) -> Path:
    """The lock file of a results file, beside its resolved path: every name of the
    file (a symbolic link, `./x`, a linked folder) leads to the same one."""
    real = path.resolve()
    return real.parent / f"{real.name}.lock"


def _busy(path: Path) -> MinskyError:
    return MinskyError(f"results file {path} is being written by another minsky process; "
                       "wait for it to finish or use another --out")


def _open_ours(path: Path) -> IO[bytes]:
    """The results file at `path` open for reading and appending (created if missing),
    locked by what it is (its inode), so a second name for it meets the same lock.
    Anything but a regular file is refused without being read or written."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except IsADirectoryError:
        raise MinskyError(f"results file {path} is a directory") from None
    except OSError as err:
        raise MinskyError(f"results file {path}: cannot open it ({err.strerror})") from None
    handle = open(fd, "a+b")  # noqa: SIM115 - the Results object closes it
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MinskyError(f"results file {path} is not a regular file; left as it is "
                              "(use another --out)")
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise _busy(path) from None
    except BaseException:
        handle.close()
        raise
    return handle


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")


class Results:
    """A results file open for appending, locked against a second writer."""

    def __init__(self, path: Path, handle: IO[bytes], rows: list[dict[str, Any]],
                 fresh: bool = False) -> None:
        self.path = path
        self._handle = handle
        self._fresh = fresh  # the file holds this run's rows only
        self._end = handle.tell()  # where this handle's last write ended
        self.rows = rows
        self.previous: list[dict[str, Any]] = rows  # what the file held when opened

    def append(self, row: dict[str, Any]) -> None:
        """Append one row as one whole line."""
        if self._replaced():
            self._rejoin(row)
        self._handle.write(_line(row))
        self._handle.flush()
        self._end = self._handle.tell()
        self.rows.append(row)

    def close(self) -> None:
        """Close the file, first re-joining it if it was replaced since the last row."""
        try:
            if not self._handle.closed and self._replaced():
                self._rejoin()
        finally:
            self._handle.close()

    def _replaced(self) -> bool:
        """Whether the file at the path is no longer the one this handle writes to, or
        was cut shorter than what this handle wrote."""
        mine = os.fstat(self._handle.fileno())
        try:
            there = os.stat(self.path)
        except OSError:
            return True
        return (mine.st_nlink == 0 or (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino)
                or there.st_size < self._end)

    def _rejoin(self, pending: dict[str, Any] | None = None) -> None:
        """Write to the file now at the path, first writing back the rows it lacks. When
        it cannot be read back, every row goes to FILE.rescued and the run stops with
        one line naming it (`pending`, the row in hand, too)."""
        warn(f"{self.path}: the file was replaced or removed while this run wrote to it; "
             "writing to the new file, with the rows it lacks")
        self._handle.close()
        try:
            if self.path.is_dir():
                raise MinskyError(f"results file {self.path} is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._fresh:
                have: Counter[bytes] = Counter()  # a stream of this run's rows only
                self._handle = _open_ours(self.path)
                self._handle.truncate(0)
                self._handle.seek(0)
            else:
                self._handle = _open_ours(self.path)
                _repair(self.path, self._handle)
                have = Counter(_line(r) for r in read_rows(self.path))
        except (OSError, MinskyError) as err:
            rescue = self.path.with_name(f"{self.path.name}.rescued")
            with rescue.open("ab") as f:
                f.writelines(_line(r) for r in [*self.rows, *([pending] if pending else [])])
            why = err.strerror if isinstance(err, OSError) else str(err)
            raise MinskyError(f"results file {self.path} was replaced by one that cannot be "
                              f"written back to ({why}); this run's rows are in {rescue}"
                              ) from None
        for row in self.rows:
            line = _line(row)
            if have[line]:
                have[line] -= 1  # each copy in the new file answers for one row
            else:
                self._handle.write(line)
        self._handle.flush()
        self._end = self._handle.tell()

    def done(self, key_of: Callable[[dict[str, Any]], str | None],
             identity: dict[str, Any], retry_failed: bool = True) -> dict[str, dict[str, Any]]:
        """The rows already finished for this scope (`key_of` gives a row's key, None for
        rows of another scope); a row of other settings in the scope is an error. A failed
        run's row is not finished unless `retry_failed` is off."""
        found: dict[str, dict[str, Any]] = {}
        legacy = 0
        for row in self.rows:
            key = key_of(row)
            if key is None or (retry_failed and row.get("status") in FAILED):
                continue  # a failed run is not an answer: a rerun tries it again
            legacy += "config" not in row
            if "config" in row and row["config"] != identity["config"]:
                raise MinskyError(
                    f"{self.path}: holds rows of {identity['society']!r} made with other "
                    f"settings (models {', '.join(row.get('models') or ['?'])}; this run: "
                    f"{', '.join(identity['models'])}); use another --out or remove the file")
            found[key] = row
        if legacy:
            warn(f"{self.path}: {legacy} row(s) of {identity['society']!r} predate recorded "
                 "settings; they are taken as this run's (as before)")
        return found


@contextmanager
def open_results(path: Path, fresh: bool = False) -> Iterator[Results]:
    """Open (creating) a results file for appending: locked, checked to be a results
    file, a broken last line repaired — in that order, so nothing is changed in a file
    another process writes or in a file that is not ours.

    With `fresh`, the file is emptied once locked (a run that cannot resume, such as an
    economy's stream); the rows it held are in `previous`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock_name(path).open("a")
    except OSError as err:
        raise MinskyError(f"results file {path}: cannot write there ({err.strerror})") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise _busy(path) from None
        if path.is_dir():
            raise MinskyError(f"results file {path} is a directory")
        handle = _open_ours(path)
        try:
            _repair(path, handle)
            rows = read_rows(path)
            if fresh:
                handle.truncate(0)
                handle.seek(0)
        except BaseException:
            handle.close()
            raise
        results = Results(path, handle, [] if fresh else rows, fresh)
        results.previous = rows
        try:
            yield results
        finally:
            results.close()
    finally:
        lock.close()  # releases the lock


@dataclass(frozen=True)
class Item:
    """One thing to run the society on: its key (unique in the run), its question, its
    gold answer (part of what identifies it), the fields its row starts with, and `data`
    for the caller's `describe` (not written)."""

    key: str
    question: str
    kind: str | None = None
    gold: Any = None
    fields: dict[str, Any] = field(default_factory=dict)
    data: Any = None


async def run_case(runner: Runner, society: Society, question: str,
                   kind: str | None = None) -> RunResult:
    """`runner.run(society, question, kind)`, `kind` ("auto", a kind, None: the society's)
    settled first; an unexpected exception is an error result."""
    question = valid(question)
    try:
        found = society.answer_kind(question, kind)
    except ValueError as exc:  # a kind that is none: the case's error, as the run's would be
        return _error_result(society, question, "text", exc)
    try:
        return await runner.run(society, question, found)
    except (MinskyError, asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - one case must not end the whole batch
        return _error_result(society, question, found, exc)


def _error_result(society: Society, question: str, kind: AnswerKind,
                  exc: Exception) -> RunResult:
    message = valid(f"{type(exc).__name__}: {exc}")[:500]
    return RunResult("", society.name, question, kind, "error",
                     Outcome(None, [], detail={"stopped": True}), Usage(), 0.0, [], message)


async def run_many(
    runner: Runner,
    society: Society,
    items: Sequence[Item],
    results: Results,
    key_of: Callable[[dict[str, Any]], str | None],
    describe: Callable[[Item, RunResult], dict[str, Any]],
    concurrency: int = 4,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    gate: asyncio.Semaphore | None = None,
    retry_failed: bool = True,
) -> list[dict[str, Any]]:
    """Run `society` on every item not yet done in `results`, `concurrency` at once; each
    finished item's row (`fields`, then `describe(item, result)`, then who made it) is
    appended as it finishes. Returns the rows written now.

    A row in the file for the same key but another question stops the run (the id was
    reused for something else); so do duplicate keys among `items`. Runs sharing one
    `gate` (several societies over the same items) share its `concurrency`. An item whose
    row is a failed run (`FAILED`) is run again, unless `retry_failed` is off.
    """
    if concurrency < 1:
        raise MinskyError(f"--concurrency {concurrency}: expected at least 1")
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise MinskyError(f"item ids must be unique; repeated: {', '.join(twice[:5])}")
    identity = society_identity(society)
    done = results.done(key_of, identity, retry_failed)
    todo = []
    for it in items:
        sha = case_sha(it.question, it.gold)
        row = done.get(it.key)
        if row is None:
            todo.append((it, sha))
        elif row.get("case_sha", sha) != sha:
            raise MinskyError(
                f"{results.path}: {it.key!r} was answered for a different question (another "
                "benchmark or questions file?); use another --out or remove the file")
    gate = gate or asyncio.Semaphore(concurrency)
    written: list[dict[str, Any]] = []

    async def one(it: Item, sha: str) -> None:
        async with gate:
            result = await run_case(runner, society, it.question, it.kind)
        row = {**it.fields, **describe(it, result), "config": identity["config"],
               "models": identity["models"], "case_sha": sha}
        results.append(row)
        written.append(row)
        if on_row:
            on_row(row)

    await asyncio.gather(*(one(it, sha) for it, sha in todo))
    return written
