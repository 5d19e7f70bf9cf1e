"""The economy's own model calls, as ordinary runs of a one-member `prompt` society.

A leader's split of the reward, a child's proposed role and bought advice each run
through the runner like any task: logged (as a run whose parent is the task's run, so
`minsky logs show` lists them), budgeted and resumable. Their prompts are templates.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from minsky.messages import Options
from minsky.runner import Runner
from minsky.society import AgentSpec, Society, from_dict


def prompt_society(spec: AgentSpec, purpose: str, options: Options) -> Society:
    """A society of `spec` alone (its role as the system message) for one raw call."""
    society = from_dict({
        "name": f"economy-{purpose.replace(' ', '-')}", "organisation": "prompt",
        "params": {"purpose": purpose},
        "budget": {"max_rounds": 1, "max_tokens": 100_000, "timeout_s": 600},
        "agents": [{"name": spec.name, "model": spec.model if spec.society is None else None,
                    "options": options.model_dump()}],
    }, f"economy:{purpose}")
    return replace(society, agents=[replace(spec, options=options)])


async def consult(
    runner: Runner, spec: AgentSpec, text: str, purpose: str, options: Options,
    parent: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """`spec` replies to `text` (one logged call); returns the reply ("" when the call
    failed) and where it was logged."""
    result = await runner.beneath(parent).run(prompt_society(spec, purpose, options), text,
                                              "text")
    reply = result.outcome.text or "" if result.status == "ok" else ""
    return reply, {"run_id": result.run_id, "status": result.status}
