"""Prompt templates, shipped as package data and rendered with Jinja2.

Prompts live in `*.j2` files next to this module rather than in Python strings, so they
can be read, diffed and changed without touching code.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined, Template


def _source(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


# StrictUndefined: a template variable the caller forgot is an error, not blank text
_ENV = Environment(loader=FunctionLoader(_source), undefined=StrictUndefined)


@cache
def _template(name: str) -> Template:
    return _ENV.get_template(f"{name}.j2")


def render(name: str, **variables: Any) -> str:
    """Render the prompt template `name` (e.g. "solve") with `variables`."""
    return _template(name).render(**variables).strip()
