"""Reading user-supplied record files: JSONL objects or plain text lines.

One reader for every command that takes a file of questions or texts, so that a bad line
is reported the same way everywhere: file, line number, what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError


def read_records(path: Path, field: str, what: str = "file") -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-empty line; each record has a string `field`.

    A `.jsonl` file holds one JSON object per line; any other file is plain text, one
    record per line, read as {field: line}.
    """
    if not path.is_file():
        raise MinskyError(f"{what} {path} does not exist")
    records: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            records.append((n, {field: line.strip()}))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise MinskyError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get(field), str):
            raise MinskyError(f"{path}:{n}: expected an object with a string {field!r}")
        records.append((n, row))
    return records
