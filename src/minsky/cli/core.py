"""The `minsky` command group and what every command shares: one-line errors, --json output.

Results go to stdout (`--json` for machines), progress to stderr. Errors a user can fix
are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

import click

from minsky import render
from minsky.cli.checks import one_line
from minsky.errors import MinskyError
from minsky.safetext import printable

T = TypeVar("T")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MinskyError as err:
            click.echo(f"error: {printable(str(err))}", err=True)
            sys.exit(2)
        except (OSError, sqlite3.Error) as err:  # a full disk, a read-only folder, …
            click.echo(f"error: {printable(one_line(err))}", err=True)
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


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)`, where SIGTERM stops the work as Ctrl-C does.

    A job a script starts in the background ignores SIGINT, so `kill` (SIGTERM) is how
    it gets stopped. Like asyncio's own Ctrl-C handling, the signal cancels the work at
    its next await (the runs in flight are logged `interrupted`, nothing is cut off
    mid-write) and KeyboardInterrupt is raised once it has unwound, for the command to
    say how to resume.
    """

    async def stoppable() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        stopped = []

        def stop() -> None:
            stopped.append(True)
            if task is not None:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, not main thread
            return await work
        try:
            return await work
        except asyncio.CancelledError:
            if stopped:
                raise KeyboardInterrupt from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(stoppable())
