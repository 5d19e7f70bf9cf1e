"""Prompt templates, shipped as package data and rendered with Jinja2.

Prompts live in `*.j2` files next to this module rather than in Python strings, so they
can be read, diffed and changed without touching code.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined, Template


@cache
def _template(name: str) -> Template:
    source = files(__package__).joinpath(f"{name}.j2").read_text(encoding="utf-8")
    # StrictUndefined: a template variable the caller forgot is an error, not blank text
    return Environment(undefined=StrictUndefined, keep_trailing_newline=False).from_string(source)


def render(name: str, **variables: Any) -> str:
    """Render the prompt template `name` (e.g. "solve") with `variables`."""
    return _template(name).render(**variables).strip()
