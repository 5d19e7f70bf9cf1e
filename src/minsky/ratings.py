"""Moved to `minsky.evals.ratings`; this name stays an alias of it for code written
against the old path."""

import sys

from minsky.evals import ratings

sys.modules[__name__] = ratings
