"""Text made safe to store and to show.

Text reaches minsky from places it does not control: model replies from a remote server,
questions and society files, result files, the command line (where undecodable bytes
arrive as lone surrogates). `valid` makes any str encodable as UTF-8, so SQLite, JSON
files and stdout accept it. `printable` is the one way such text reaches a terminal:
it shows every character that would act on the terminal instead of being read as an
escape — C0 and C1 controls (ESC starts CSI and OSC sequences: colours, cursor moves,
window titles, OSC 8 hyperlinks with a hidden target), bidirectional overrides and
isolates (which reorder what is shown), and line and paragraph separators. Rich markup
(`[bold]`, `[/INST]`) is the other half: `render` puts printable text in rich `Text`
objects and its consoles parse no markup, so brackets are shown as they are.
`json_printable` does the same for JSON printed to a terminal, keeping the JSON exact.
"""

from __future__ import annotations

import re
from typing import Any

# a Python str holds surrogate pairs already combined, so every surrogate in one is lone
_SURROGATE = re.compile("[\ud800-\udfff]")
# what acts on a terminal rather than being shown: C0 controls but tab and newline, DEL,
# the C1 controls (0x9b is a one-byte CSI, 0x9d a one-byte OSC), the bidirectional marks,
# embeddings, overrides and isolates, and the line and paragraph separators
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_UNSAFE}]")
_CONTROL_OR_LINE = re.compile(f"[{_UNSAFE}\t\n]")
_JSON_ESCAPED = re.compile(f"[{_UNSAFE}\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


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


def printable(text: str, line: bool = False) -> str:
    """`text`, valid, with every character that acts on a terminal shown as an escape
    (ESC as `\\x1b`, U+202E as `\\u202e`); with `line`, tab and newline too, so the text
    stays on one line."""
    pattern = _CONTROL_OR_LINE if line else _CONTROL
    return pattern.sub(lambda m: _escape(m.group()), valid(text))


def json_printable(dumped: str) -> str:
    """JSON text (from `json.dumps`) with the characters `printable` escapes written as
    JSON escapes (`\\u001b`): it parses to the same value and is safe on a terminal."""
    # subtle: outside its strings JSON holds only ASCII punctuation, digits and spaces,
    # so every such character is inside a string, where `\\uXXXX` means the same (a lone
    # surrogate too: it parses back as itself)
    return _JSON_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


__all__ = ["json_printable", "printable", "valid", "valid_tree"]
