"""Reading user-supplied record files: JSONL objects or plain text lines.

One reader for every command that takes a file of questions or texts, so that a bad line
is reported the same way everywhere: file, line number, what was expected.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.inputs.safetext import printable, valid_tree


def jsonl_objects(path: Path, what: str = "file") -> list[tuple[int, Any]]:
    """(line number, parsed value) for every non-empty line of a user's JSONL file; a line
    that is not JSON is an error naming the file and the line."""
    if not path.is_file():
        raise MinskyError(f"{what} {path} does not exist")
    out: list[tuple[int, Any]] = []
    for n, line in enumerate(lines(path), 1):
        if line.strip():
            try:
                out.append((n, valid_tree(json.loads(line))))
            except json.JSONDecodeError as err:
                raise MinskyError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            except RecursionError:
                raise MinskyError(f"{path}:{n}: JSON nested too deeply") from None
    return out


def read_records(path: Path, field: str, what: str = "file") -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-empty line; each record has a string `field`.

    A `.jsonl` file holds one JSON object per line; any other file is plain text, one
    record per line, read as {field: line}.
    """
    if path.suffix != ".jsonl":
        if not path.is_file():
            raise MinskyError(f"{what} {path} does not exist")
        return [(n, {field: line.strip()}) for n, line in enumerate(lines(path), 1)
                if line.strip()]
    records: list[tuple[int, dict[str, Any]]] = []
    for n, row in jsonl_objects(path, what):
        if not isinstance(row, dict) or not isinstance(row.get(field), str):
            raise MinskyError(f"{path}:{n}: expected an object with a string {field!r}")
        records.append((n, row))
    return records


def lines(path: Path) -> list[str]:
    """The lines of a file, split at line breaks only.

    subtle: str.splitlines also splits at U+0085 and U+2028, which JSON strings may hold
    raw (one MMLU record does), so a JSONL file is split on "\n" alone.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise MinskyError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return [line.rstrip("\r") for line in text.split("\n")]


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Every object of a JSONL file this program wrote (results, annotations).

    A half-written last line (a kill or a full disk mid-write) is skipped with a warning;
    a broken line anywhere else is an error naming the file and the line."""
    if not path.exists():
        return []
    data = path.read_text(encoding="utf-8", errors="surrogateescape")
    numbered = [(n, line.rstrip("\r")) for n, line in enumerate(data.split("\n"), 1)
                if line.strip()]
    cut = bool(data) and not data.endswith("\n")
    rows: list[dict[str, Any]] = []
    for k, (n, line) in enumerate(numbered):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(numbered) - 1 and cut:
                print(printable(f"warning: {path}:{n}: the last line is half-written; "
                                "skipped", line=True), file=sys.stderr)
                continue
            raise MinskyError(f"{path}:{n}: not a complete JSON row; remove or fix that "
                              "line") from None
    return rows


def unique_ids(ids: Sequence[str]) -> list[str]:
    """`ids` with repeats made distinct ("7", "7#2", "7#3"), first occurrence unchanged,
    so no item is silently taken for another on resume."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out
