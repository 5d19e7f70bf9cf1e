"""How deeply nested a parsed input may be, and TOML parsed within that bound.

Parsers, validators and loggers recurse once per level of nesting. A society file of a
few thousand nested `[` (or inline tables) makes `tomllib` itself raise RecursionError,
and a JSON request body to `minsky serve` does the same in `json`; a shallower one parses
and then fails deeper in, in pydantic or when it is logged. No real input nests deeply,
so a parsed value deeper than `MAX_NESTING` is refused with one line naming where it came
from. The walk is iterative, so checking depth cannot itself recurse too deep.
"""

from __future__ import annotations

import tomllib
from typing import Any

from minsky.errors import MinskyError

# far above any real society file or request body (those nest five or six levels)
MAX_NESTING = 32


def depth(value: Any, stop: int | None = None) -> int:
    """How many levels of dicts and lists `value` nests (a scalar is 0, `[]` is 1); the
    walk stops at `stop` levels, if given."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if stop is not None and deepest >= stop:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_depth(value: Any, max_depth: int, where: str) -> None:
    """Refuse `value` (parsed TOML or JSON from `where`) if it nests deeper than
    `max_depth` levels of tables, arrays or objects."""
    if depth(value, stop=max_depth + 1) > max_depth:
        raise MinskyError(f"{where}: nested more than {max_depth} levels deep (arrays, "
                          f"tables or objects); at most {max_depth}")


def load_toml(text: str, where: str, max_depth: int = MAX_NESTING) -> dict[str, Any]:
    """`text` parsed as TOML; invalid TOML, or TOML nested deeper than `max_depth`, is a
    MinskyError naming `where`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise MinskyError(f"{where}: not valid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once or twice a level
        raise MinskyError(f"{where}: nested more than {max_depth} levels deep (arrays or "
                          f"tables); at most {max_depth}") from None
    check_depth(data, max_depth, where)
    return data


__all__ = ["MAX_NESTING", "check_depth", "depth", "load_toml"]
