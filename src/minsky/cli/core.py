"""The `minsky` command group and what every command shares: one-line errors, --json output.

Results go to stdout (`--json` for machines), progress to stderr. Errors a user can fix
are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from minsky import render
from minsky.errors import MinskyError


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MinskyError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper


def emit(data: Any, as_json: bool, view: Callable[[Any], Any]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        render.print_renderable(view(data))


@click.group()
@click.version_option(package_name="minsky")
def main() -> None:
    """minsky: societies of small language models that solve tasks together."""
