"""Moved to `minsky.evals.arena`; this name stays an alias of it for code written
against the old path."""

import sys

from minsky.evals import arena

sys.modules[__name__] = arena
