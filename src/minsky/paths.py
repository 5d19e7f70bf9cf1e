"""Where minsky keeps its files: one environment variable moves them all.

`MINSKY_HOME` (tests point it at a temporary directory) holds the run log; the assembled
model cache lives under `MINSKY_CACHE` or the platform's user cache directory, so that
hermetic test homes do not re-assemble a 491 MB model each time.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home_dir() -> Path:
    """The user directory (run log, user societies)."""
    path = Path(os.environ.get("MINSKY_HOME") or platformdirs.user_data_dir("minsky"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """The cache directory (assembled model files)."""
    path = Path(os.environ.get("MINSKY_CACHE") or platformdirs.user_cache_dir("minsky"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path() -> Path:
    """The SQLite run log."""
    return home_dir() / "logs.db"
