"""One case of a batch or an evaluation, run so that its failure is its own.

`batch` and `eval` run many questions at once under one `asyncio.gather`; an exception
from one run would cancel all the others and lose their work. `run_case` turns an
unexpected failure of one run into that case's `error` result. A `MinskyError` (a
problem with the user's setup, the same for every case) still ends the command.
"""

from __future__ import annotations

import asyncio

from minsky.errors import MinskyError
from minsky.messages import Usage
from minsky.organisations.base import Outcome, answer_kind
from minsky.runner import Runner, RunResult
from minsky.safetext import valid
from minsky.society import Society


async def run_case(runner: Runner, society: Society, question: str,
                   kind: str | None = None) -> RunResult:
    """`runner.run(society, question, kind)`; an unexpected exception is an error result."""
    try:
        return await runner.run(society, question, kind)
    except (MinskyError, asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - one case must not end the whole batch
        message = valid(f"{type(exc).__name__}: {exc}")[:500]
        question = valid(question)
        try:
            found = answer_kind(kind or society.config.answer, question)
        except ValueError:
            found = "text"
        return RunResult("", society.name, question, found, "error",
                         Outcome(None, [], detail={"stopped": True}), Usage(), 0.0, [], message)


__all__ = ["run_case"]
