"""The base of every model a user or a plugin writes: unknown keys are errors.

Society files, options, economy rules, tool options, organisation parameters, the
server's request bodies and the viewer's query all derive from `Strict`, so a misspelt
key ("temperatur") fails loudly with its name instead of being ignored. `error_line`
turns what such a model refused into the one line a user reads.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, ValidationError

# pydantic's message already says all there is: the value is not repeated after it
_NO_VALUE = ("missing", "extra_forbidden", "value_error")
_LONGEST_VALUE = 60  # characters of a refused value quoted in the line


class Strict(BaseModel):
    """A pydantic model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")


def field_name(path: str) -> str:
    """How `error_line` names a field of a file by default: `field 'agents.0.count'`."""
    return f"field '{path or '(top level)'}'"


def error_line(err: ValidationError, where: str = "", within: str = "",
               name: Callable[[str], str] = field_name) -> str:
    """What `err` refused, as one line: `WHERE: field 'a.b': what is wrong (got VALUE)`,
    each error pydantic found in turn, joined by "; ".

    `where` names the input (a file, `file:line`); `within` is the path of the part of
    it that was validated ("params", "tools.Search"), put before each field's path;
    `name` names a field's dotted path another way (`option --max-queue`)."""
    parts = []
    for e in err.errors():
        path = ".".join(str(p) for p in ((within,) if within else ()) + tuple(e["loc"]))
        message = e["msg"]
        if e["type"] not in _NO_VALUE:
            shown = repr(e["input"])
            if len(shown) > _LONGEST_VALUE:
                shown = shown[:_LONGEST_VALUE] + "…"
            message += f" (got {shown})"
        parts.append(f"{name(path)}: {message}")
    return (f"{where}: " if where else "") + "; ".join(parts)
