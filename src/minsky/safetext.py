"""Text made safe to store and to show.

Text reaches minsky from places it does not control: model replies from a remote server,
questions from files, the command line (where undecodable bytes arrive as lone
surrogates). `valid` makes any str encodable as UTF-8, so SQLite, JSON files and stdout
accept it; `printable` neutralises terminal control characters, so a reply shown by
`logs show` cannot set the window title, clear the screen or write the clipboard.
"""

from __future__ import annotations

import re
from typing import Any

# a Python str holds surrogate pairs already combined, so every surrogate in one is lone
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls except tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def valid(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (the replacement character)."""
    return _SURROGATE.sub("\ufffd", text)


def valid_tree(value: Any) -> Any:
    """`valid` applied to every string in parsed JSON (nested dicts and lists, keys too)."""
    if isinstance(value, str):
        return valid(value)
    if isinstance(value, dict):
        return {valid_tree(k): valid_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_tree(v) for v in value]
    return value


def printable(text: str) -> str:
    """`text`, valid, with control characters shown as escapes (ESC as `\\x1b`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", valid(text))


def printable_tree(value: Any) -> Any:
    """`printable` applied to every string in nested dicts and lists (keys too)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_tree(v) for v in value]
    return value


__all__ = ["printable", "printable_tree", "valid", "valid_tree"]
