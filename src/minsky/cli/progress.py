"""The progress bar of the long commands (`eval`, `batch`, `arena`, `economy run`,
`contamination`, `toolformer annotate`): done/total, a running figure, time left.

It goes to stderr, so results on stdout stay clean, and only to a terminal: under
`--json`, or with stderr piped into a file or a log, it is hidden, and the lines a
command says about each finished item are printed as plain lines instead.

Labels and lines hold society names, case ids and answers: each goes through
`safetext.printable` on one line, and no column reads markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from minsky.inputs.safetext import printable


def _console() -> Console:
    """The console the bar draws on (tests swap in one that is a terminal)."""
    return Console(stderr=True)


class Bar:
    """One bar: `advance` after each finished item, `say` for a line above it."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def advance(self, figure: str | None = None, steps: int = 1) -> None:
        """One more item done; `figure` (accuracy so far, errors) replaces the last one."""
        if self._progress is None or self._task is None:
            return
        if figure is None:
            self._progress.update(self._task, advance=steps)
        else:
            self._progress.update(self._task, advance=steps, figure=figure)

    def say(self, message: str) -> None:
        """A line on stderr: above the bar when it is shown, a plain line otherwise."""
        if self._progress is None:
            say(message)
        else:  # Text: "[…]" is not markup
            self._progress.console.print(Text(printable(message, line=True)))


def say(message: str) -> None:
    """A line a command says on stderr (what it runs, what finished), on one line and
    with no terminal control in it."""
    click.echo(printable(message, line=True), err=True)


def errors_figure(failed: int) -> str:
    """The running count of failed runs a bar shows ("2 errors"), or nothing."""
    return f"{failed} error{'s' * (failed != 1)}" if failed else ""


@contextmanager
def progress_bar(label: str, total: int, done: int = 0,
                 hidden: bool = False) -> Iterator[Bar]:
    """A bar for `total` items of which `done` were finished by an earlier run; hidden
    when asked (`--json`) or when stderr is not a terminal."""
    console = _console()
    if hidden or not console.is_terminal:
        yield Bar(None, None)
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  TextColumn("{task.completed}/{task.total}", markup=False),
                  TextColumn("{task.fields[figure]}", markup=False), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(printable(label, line=True), total=total, completed=done,
                                 figure="")
        yield Bar(progress, task)


__all__ = ["Bar", "errors_figure", "progress_bar", "say"]
