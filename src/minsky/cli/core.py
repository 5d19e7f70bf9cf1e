"""The `minsky` command group and what every command shares: one-line errors, --json output.

Results go to stdout (`--json` for machines), progress to stderr. Errors a user can fix
are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from minsky.cli import render
from minsky.cli.checks import one_line
from minsky.errors import MinskyError
from minsky.inputs.safetext import json_printable, printable
from minsky.models import DEFAULT_MODEL, DEFAULT_MODEL_ENV, MODELS

T = TypeVar("T")

# The largest numbers options take: far above any real use, and small enough that SQLite
# (signed 64 bits), numpy (a 32-bit seed) and the engine hold them, and that nothing of
# that many items is ever allocated. A larger number is one line naming the option.
MAX_COUNT = 10_000_000  # cases, questions, texts, runs listed
MAX_WORKERS = 4096  # items in flight, threads, batch sizes
MAX_SEED = 2**32 - 1
MAX_CTX = 1 << 20  # KV cache tokens
SEED = click.IntRange(0, MAX_SEED)


def count(low: int = 1, high: int = MAX_COUNT) -> click.IntRange:
    """An integer option's type: `low` to `high` (by default at most MAX_COUNT)."""
    return click.IntRange(low, high)


class Finite(click.FloatRange):
    """A float option's type that also refuses nan and inf (a range lets nan through:
    every comparison with it is false)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MinskyError as err:
            click.echo(f"error: {printable(str(err), line=True)}", err=True)
            sys.exit(2)
        except (OSError, sqlite3.Error) as err:  # a full disk, a read-only folder, …
            click.echo(f"error: {printable(one_line(err), line=True)}", err=True)
            sys.exit(2)

    return wrapper


def emit(data: Any, as_json: bool, view: Callable[[Any], Any]) -> None:
    if as_json:
        echo_json(data, indent=2)
    else:
        render.print_renderable(view(data))


def echo_json(data: Any, indent: int | None = None) -> None:
    """`data` as JSON on stdout, exact, with no character in it that acts on a terminal."""
    click.echo(json_printable(json.dumps(data, indent=indent, ensure_ascii=False,
                                         default=str)))


def exit_if_failed(failed: int, what: str, detail: str = "", retried: bool = True) -> None:
    """After a command's output: when `failed` runs failed, say so in one line and exit 1
    (a failed run is not an answer; a rerun retries it unless told not to)."""
    if not failed:
        return
    how = ("rerunning the same command retries them" if retried
           else "rerun without --no-retry-errors to retry them")
    click.echo(printable(f"error: {failed} {what} failed{detail}; {how}", line=True),
               err=True)
    sys.exit(1)


class _OneLineErrors(click.Group):
    """The top-level group: a bad option or argument is one line and exit 2, like every
    other error a user can fix (click's default is a usage block over several lines)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as err:
            help_asked = getattr(click.exceptions, "NoArgsIsHelpError", ())
            if isinstance(err, help_asked):  # a bare group: its help, as click shows it
                err.show()
                sys.exit(err.exit_code)
            # the line quotes the value given, which may hold anything
            click.echo(f"error: {printable(_usage_line(err), line=True)}", err=True)
            sys.exit(2)
        except click.ClickException as err:
            click.echo(f"Error: {printable(err.format_message(), line=True)}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_line(err: click.UsageError) -> str:
    """A usage error as one line; a bad value names its option: "option --parallel: …"."""
    param = getattr(err, "param", None)
    # subtle: a missing parameter is a BadParameter with no message of its own; click's
    # format_message says what is missing ("Missing option '--bench'.")
    if isinstance(err, click.MissingParameter) or not err.message:
        return " ".join(err.format_message().split())
    if isinstance(err, click.BadParameter) and isinstance(param, click.Option):
        return f"option {max(param.opts, key=len)}: {err.message}"
    if isinstance(err, click.BadParameter) and param is not None:
        return f"argument {param.human_readable_name}: {err.message}"
    return " ".join(err.format_message().split())


@click.group(cls=_OneLineErrors)
@click.version_option(package_name="minsky")
def main() -> None:
    """minsky: societies of small language models that solve tasks together."""


def otel_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--otel`: send every run as an OpenTelemetry trace (`minsky.otel`); also on, with
    the extra installed, when $OTEL_EXPORTER_OTLP_ENDPOINT is set. The command does not
    receive it: tracing starts before the command runs."""

    @wraps(fn)
    def wrapper(*args: Any, otel: bool, **kwargs: Any) -> Any:
        from minsky import otel as tracing

        try:
            tracing.start(otel)
        except MinskyError as err:  # no extra: one line, as any usage error
            raise click.UsageError(str(err)) from None
        return fn(*args, **kwargs)

    return click.option("--otel", is_flag=True,
                        help="send each run as an OpenTelemetry trace to "
                             "$OTEL_EXPORTER_OTLP_ENDPOINT (needs minsky[otel])")(wrapper)


MODEL_HELP = (f"model for every agent: {', '.join(MODELS)}, a GGUF path, echo: (a fake) or "
              f"openai:URL#MODEL (default: the society's, else ${DEFAULT_MODEL_ENV}, else "
              f"{DEFAULT_MODEL})")


def backend_options(fn: Callable[..., Any] | None = None, *,
                    model: bool = True) -> Any:
    """The model and backend options every command that runs a model takes (`serve`
    too), with the same help and defaults (`BackendSettings`'s): the command receives
    `--model` as its `model` argument (None: each society's own) and the others as one
    `settings` argument. `--otel` comes with them. `@backend_options(model=False)` leaves
    `--model` out, for a command that names its model another way (`star run --base`)."""
    if fn is None:
        return lambda command: _backend_options(command, model)
    return _backend_options(fn, model)


def _backend_options(fn: Callable[..., Any], model: bool) -> Callable[..., Any]:
    from minsky.plugin_api import BackendSettings

    fields = BackendSettings.model_fields

    @wraps(fn)
    def wrapper(*args: Any, threads: int | None, parallel: int, n_ctx: int,
                **kwargs: Any) -> Any:
        settings = BackendSettings(threads=threads, parallel=parallel, n_ctx=n_ctx)
        return fn(*args, settings=settings, **kwargs)

    options = [
        click.option("--threads", type=count(1, MAX_WORKERS), default=None,
                     help="CPU threads (default: all cores)"),
        click.option("--parallel", type=click.IntRange(1, 64),
                     default=fields["parallel"].default, show_default=True,
                     help="sequences decoded in one batch (members of all runs together)"),
        click.option("--ctx", "n_ctx", type=count(512, MAX_CTX),
                     default=fields["n_ctx"].default, show_default=True,
                     help="KV cache tokens, all sequences together"),
    ]
    if model:
        options.insert(0, click.option("--model", "-m", default=None, help=MODEL_HELP))
    for option in reversed(options):
        wrapper = option(wrapper)
    return otel_option(wrapper)


def log_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--log PATH`: the run log a command reads or writes (its `log_path` argument; None
    is the default, `$MINSKY_HOME/logs.db`)."""
    return click.option("--log", "log_path", type=click.Path(path_type=Path, dir_okay=False),
                        default=None, help="the run log (default $MINSKY_HOME/logs.db)")(fn)


def limit_option(items: str, default: int | None = None, high: int = MAX_COUNT,
                 seeded: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--limit/-n N`: how many of its `items` a command takes, the same option in every
    command (its `limit` argument); no default is all of them, the first N in file order,
    or with `seeded` a sample drawn by `--seed`."""
    if default is None:
        text = (f"number of {items} (default: all): the first N in file order"
                + (", or a sample of N with --seed" if seeded else ""))
    else:  # a stream that must be finite (economy run's tasks per generation)
        text = f"number of {items}"
    return click.option("--limit", "-n", "limit", type=count(1, high), default=default,
                        show_default=default is not None, help=text)


def seed_option(items: str, default: int | None = None,
                also: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--seed K`: the seed of the `--limit` sample of `items`, the same option in every
    command that samples; without one (where that is the default) the first N are taken."""
    text = (f"sample the {items} with this seed"
            + (" (default: none, so the first N in file order)" if default is None else "")
            + (f"; {also}" if also else ""))
    return click.option("--seed", type=SEED, default=default,
                        show_default=default is not None, help=text)


def concurrency_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--concurrency`: items in flight at once (at least 1)."""
    return click.option("--concurrency", "-c", type=count(1, MAX_WORKERS), default=4,
                        show_default=True, help="items in flight at once")(fn)


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

        def cancel() -> None:
            if task is not None and not task.done():
                task.cancel()
                # subtle: a cancellation can be swallowed (Python 3.11's wait_for returns
                # the inner result when it finished as it was cancelled), and the work
                # would run to its end: until it is done, cancel it again
                loop.call_later(1.0, cancel)

        def stop() -> None:
            stopped.append(True)
            cancel()

        # Ctrl-C too, unless it is ignored (a background job): asyncio's own handler
        # cancels once, and a swallowed cancellation would go unnoticed
        signals = [signal.SIGTERM] + (
            [signal.SIGINT] if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN,
                                                                     signal.SIG_DFL) else [])
        try:
            for sig in signals:
                loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, not main thread
            return await work
        try:
            result = await work
        except asyncio.CancelledError:
            if stopped:
                raise KeyboardInterrupt from None
            raise
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        if stopped:  # stopped as the work finished: it still says how it was stopped
            raise KeyboardInterrupt
        return result

    return asyncio.run(stoppable())
