"""The second layer: run_program in a worker process (`python -I -m minsky.pyrun`) with
rlimits on memory and CPU time, and a wall-clock timeout after which it is replaced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import subprocess
import sys
import threading

from minsky.pyrun._interpreter import run_program
from minsky.pyrun._limits import (
    MAX_NEST,
    MAX_REPLY,
    MAX_SENT,
    MAX_STEPS,
    STARTUP_TIMEOUT_S,
    WORKER_CPU_S,
    WORKER_RUNS,
)
from minsky.pyrun._values import _SCALARS, ProgramResult, Value


def _plain(v: Value) -> bool:
    """Whether v is plain data to send back: scalars in lists and tuples, nested at most
    MAX_NEST deep, MAX_SENT elements in all (shared parts counted each time they appear,
    as JSON would write them); functions, ranges and cycles stay in the worker."""
    stack, sent = [(v, 0)], 0
    while stack:
        x, depth = stack.pop()
        sent += 1
        if sent > MAX_SENT or depth > MAX_NEST:
            return False  # also ends a cycle, which never runs out of elements
        if type(x) in (list, tuple):
            stack.extend((y, depth + 1) for y in x)
        elif type(x) not in _SCALARS:
            return False
    return True


def _limit_self(memory_mb: int, cpu_s: int) -> None:
    """Cap this process's address space and CPU time (POSIX; elsewhere a no-op)."""
    try:
        import resource

        def limit(kind: int, value: int) -> None:
            hard = resource.getrlimit(kind)[1]
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else hard))

        usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time counts from startup
        limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + cpu_s)
        limit(resource.RLIMIT_AS, memory_mb * 2**20)
    except (ImportError, ValueError, OSError):
        pass


def _serve(memory_mb: int, cpu_s: int) -> None:
    """The worker's loop (`python -m minsky.pyrun MEMORY_MB CPU_S`): one JSON request per
    line on stdin, one JSON result per line on stdout, until stdin closes."""
    _limit_self(memory_mb, cpu_s)
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        r = run_program(job["source"], entry=job["entry"], max_steps=job["max_steps"])
        value = r.value if _plain(r.value) else None
        try:
            reply = json.dumps([r.ok, value, r.output, r.error])
        except (ValueError, TypeError, RecursionError):
            reply = json.dumps([False, None, "", "the result cannot be sent back"])
        print(reply, flush=True)


class _Worker:
    """A long-lived worker process that runs programs one at a time: starting a process
    per program would cost more than the programs. It is a plain `python -m` child
    speaking JSON lines, not a multiprocessing one, which would import the parent's main
    script again in the child."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.runs = 0
        # -I: no environment variables, user site or current directory shape the child
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "minsky.pyrun", str(memory_mb), str(WORKER_CPU_S)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
        try:
            started = self._line(STARTUP_TIMEOUT_S) == "ready"
        except (TimeoutError, EOFError, ValueError):
            started = False
        if not started:
            self.close()
            raise OSError("the worker process did not start")

    def _line(self, timeout_s: float) -> str:
        """The worker's next line, waiting at most timeout_s; a bounded length."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        line = self.proc.stdout.readline(MAX_REPLY + 1)
        if not line:
            raise EOFError
        if len(line) > MAX_REPLY:
            raise ValueError("reply too long")
        return line.strip()

    def run(self, source: str, entry: str, max_steps: int, timeout_s: float) -> ProgramResult:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.runs += 1
        self.proc.stdin.write(json.dumps({"source": source, "entry": entry,
                                          "max_steps": max_steps}) + "\n")
        self.proc.stdin.flush()
        ok, value, output, error = json.loads(self._line(timeout_s))
        return ProgramResult(ok, value, output, error)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def run_program_guarded(source: str, *, entry: str = "solution", timeout_s: float = 5.0,
                        memory_mb: int = 256, max_steps: int = MAX_STEPS) -> ProgramResult:
    """run_program in a worker process with memory and CPU rlimits, killed (and replaced)
    when a program runs longer than timeout_s seconds of wall-clock time; blocks.

    One worker serves the programs of this process in turn; it is replaced after
    WORKER_RUNS programs, so its CPU limit (a backstop behind the interpreter's own step
    limit) is shared by a bounded number of them."""
    global _WORKER
    with _WORKER_LOCK:
        try:
            if _WORKER is not None and (_WORKER.memory_mb != memory_mb
                                        or _WORKER.runs >= WORKER_RUNS):
                _WORKER.close()
                _WORKER = None
            if _WORKER is None:
                _WORKER = _Worker(memory_mb)
            return _WORKER.run(source, entry, max_steps, timeout_s)
        except TimeoutError:
            error = f"timed out after {timeout_s:g}s"
        except OSError as e:
            error = str(e) if "did not start" in str(e) else "the worker process failed"
        except (EOFError, ValueError):
            error = "the worker process died (memory or CPU limit) or sent too much"
        if _WORKER is not None:
            _WORKER.close()
            _WORKER = None
        return ProgramResult(False, None, "", error)


async def run_program_isolated(source: str, *, entry: str = "solution",
                               timeout_s: float = 5.0, memory_mb: int = 256,
                               max_steps: int = MAX_STEPS) -> ProgramResult:
    """run_program_guarded in a thread, so that waiting for the worker blocks no event loop."""
    return await asyncio.to_thread(run_program_guarded, source, entry=entry,
                                   timeout_s=timeout_s, memory_mb=memory_mb, max_steps=max_steps)
