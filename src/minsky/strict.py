"""The base of every model a user or a plugin writes: unknown keys are errors.

Society files, options, economy rules, tool options and organisation parameters all
derive from `Strict`, so a misspelt key ("temperatur") fails loudly with its name
instead of being ignored.
"""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")
