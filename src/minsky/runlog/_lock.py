"""One resume of a run at a time: an exclusive lock file per run, beside the run log.

Resuming run ID takes `logs.db.locks/ID.lock` (a POSIX advisory lock, never waited for)
and holds it until the run finishes, the log is closed or the process ends. Without
POSIX locks (Windows) a second resume is not detected. Whether the process that ran a
run is still alive (`alive`) is the other half of the check, made by the run log.
"""

from __future__ import annotations

import errno
import os
import socket
from contextlib import suppress
from pathlib import Path

from minsky.errors import MinskyError

try:  # POSIX advisory locks; without them (Windows) a second resume is not detected
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None  # type: ignore[assignment]

HOST = socket.gethostname()


def alive(pid: int) -> bool:
    """Whether process `pid` exists on this host."""
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM  # exists, but another user's
    return True


class ResumeLocks:
    """The resume locks one process holds on the runs of the log at `log_path`."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.folder = log_path.parent / f"{log_path.name}.locks"
        self.held: dict[str, int] = {}  # run id -> the descriptor of its lock

    def take(self, run_id: str) -> None:
        """Hold run `run_id`'s lock, or stop with one line: another resume holds it."""
        if run_id in self.held or fcntl is None:
            return
        lock = self.folder / f"{run_id}.lock"
        busy = MinskyError(f"run {run_id} is being resumed by another minsky process; "
                           "wait for it to finish, then resume it again if needed")
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as err:
            raise MinskyError(f"run log {self.log_path}: cannot lock run {run_id} for "
                              f"resuming ({err.strerror})") from None
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise busy from None
            # subtle: a holder unlinks the file as it lets go; a lock taken on a file no
            # longer at that name locks nothing, so take the one that is there now
            with suppress(OSError):
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    self.held[run_id] = fd
                    return
            os.close(fd)

    def release(self, run_id: str) -> None:
        fd = self.held.pop(run_id, None)
        if fd is None:
            return
        with suppress(OSError):
            os.unlink(self.folder / f"{run_id}.lock")
        os.close(fd)

    def release_all(self) -> None:
        for run_id in list(self.held):
            self.release(run_id)

