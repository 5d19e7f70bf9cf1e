"""Where minsky keeps its files: one environment variable moves them all.

`MINSKY_HOME` (tests point it at a temporary directory) holds the run log; the assembled
model cache lives under `MINSKY_CACHE` or the platform's user cache directory, so that
hermetic test homes do not re-assemble a 491 MB model each time.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from minsky.errors import MinskyError


def _made(path: Path, variable: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MinskyError(f"{variable} {path}: cannot create it ({err.strerror})") from None
    return path


def home_dir() -> Path:
    """The user directory (run log, user societies)."""
    path = Path(os.environ.get("MINSKY_HOME") or platformdirs.user_data_dir("minsky"))
    return _made(path, "MINSKY_HOME")


def cache_dir() -> Path:
    """The cache directory (assembled model files), created if missing."""
    return _made(cache_path(), "MINSKY_CACHE")


def cache_path() -> Path:
    """Where the cache directory is, without creating it (for listings that only look)."""
    return Path(os.environ.get("MINSKY_CACHE") or platformdirs.user_cache_dir("minsky"))


def log_path() -> Path:
    """The SQLite run log."""
    return home_dir() / "logs.db"
