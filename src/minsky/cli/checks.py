"""Checks the commands make before any work, and the one line a system error becomes.

A results file that cannot be written, or a plot that has no folder to go to, would
otherwise be found only after every case ran. `one_line` turns what the operating system
or SQLite raised into `error: …` naming the path, for `friendly` to print.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from minsky.errors import MinskyError


def writable_file(path: Path | None, option: str) -> None:
    """Refuse a file option that names a folder, or a place that cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise MinskyError(f"option {option}: {path} is a folder; expected a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise MinskyError(f"option {option}: {path} cannot be written")
        return
    folder = _existing_parent(path.parent)
    if not folder.is_dir():
        raise MinskyError(f"option {option}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MinskyError(f"option {option}: cannot create {path} (folder {folder} is not "
                          "writable)")


def existing_folder_for(path: Path | None, option: str) -> None:
    """Refuse a file option whose folder does not exist (a plot is written at the end)."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MinskyError(f"option {option}: folder {folder} does not exist")
    writable_file(path, option)


def outputs(out: Path | None, plot: Path | None = None) -> None:
    """Check a command's `--out` and `--plot` before it does any work."""
    writable_file(out, "--out")
    existing_folder_for(plot, "--plot")


def results_out(out: Path) -> None:
    """Refuse, before any work, an existing `--out` that is not a results file: a run
    must never change a file it did not write (`minsky.results.check_out`)."""
    from minsky.results import check_out

    check_out(out)


def _existing_parent(folder: Path) -> Path:
    # `--out a/b/c.jsonl` creates a/b: what must be writable is the nearest folder that is
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def one_line(err: BaseException) -> str:
    """What an OSError or sqlite3.Error means, in one line that names the path."""
    if isinstance(err, OSError):
        where = " → ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
        what = err.strerror or str(err) or type(err).__name__
        return f"{where}: {what}" if where else what
    if isinstance(err, sqlite3.Error):
        return f"run log: {err}"
    return str(err)


__all__ = ["existing_folder_for", "one_line", "outputs", "results_out", "writable_file"]
