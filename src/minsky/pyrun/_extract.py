"""A program from a model's reply, and an answer from a program's result."""

from __future__ import annotations

import ast
import re
import textwrap
from fractions import Fraction

from minsky.pyrun._limits import MAX_SOURCE
from minsky.pyrun._values import ProgramResult
from minsky.tools.calculator import format_number


def _defines(source: str, entry: str) -> bool:
    if len(source) > MAX_SOURCE:
        return False
    try:
        tree = ast.parse(source)
    except Exception:
        return False
    return any(isinstance(s, ast.FunctionDef) and s.name == entry for s in tree.body)


_FENCE = r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)"  # re caches the compiled patterns
_CODE_START = r"(def |import |from )"


def extract_program(text: str) -> str | None:
    """The program in a model's reply: the last ```python fenced block (else the last bare
    ``` block), else the text itself, or its first code line onwards with trailing prose
    dropped, if that parses and defines `solution`; None if there is none."""
    tagged = bare = None
    for m in re.finditer(_FENCE, text, re.DOTALL):
        code = textwrap.dedent(m[2]).strip()
        if code and m[1].lower() in ("python", "py", "python3"):
            tagged = code
        elif code and not m[1]:
            bare = code
    if tagged or bare:
        return tagged or bare
    lines = textwrap.dedent(text).strip().splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(_CODE_START, line)), 0)
    for end in range(len(lines), max(start, len(lines) - 20), -1):
        candidate = "\n".join(lines[start:end]).strip()
        if _defines(candidate, "solution"):
            return candidate
    return None


_NUMBER = r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?"


def _number_text(text: str) -> str | None:
    # Only plain decimals, and short: Fraction("1e999999999") would build a huge integer.
    if len(text) > 60 or not re.fullmatch(_NUMBER, text):
        return None
    return format_number(Fraction(text.replace(",", "")))


def program_answer(result: ProgramResult) -> str | None:
    """The answer as text: a returned number (rounded to 6 places, "12.0" -> "12") or a
    returned string that is one, else the last number printed, else None."""
    if not result.ok:
        return None
    v = result.value
    if type(v) in (int, float):
        return format_number(Fraction(v))
    if type(v) is str and v.strip():
        return _number_text(v.strip())  # text is no answer to a word problem
    for m in reversed(list(re.finditer(_NUMBER, result.output))):
        answer = _number_text(m[0])
        if answer is not None:
            return answer
    return None
