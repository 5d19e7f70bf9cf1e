"""What a listing says about a society: its organisation, members, models and budget.

One card for `minsky societies --json` and `minsky serve`'s `/v1/models`, so the two
never describe the same society differently.
"""

from __future__ import annotations

from typing import Any

from minsky.society import Society


def society_card(society: Society) -> dict[str, Any]:
    """The society's organisation, description, member names, models and budget."""
    return {
        "organisation": society.config.organisation,
        "description": society.config.description,
        "members": [a.name for a in society.agents],
        "models": sorted({a.model for a in society.agents}),
        "budget": society.config.budget.model_dump(),
    }


__all__ = ["society_card"]
