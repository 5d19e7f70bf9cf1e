"""Moved to `minsky.evals.stats`; this name stays an alias of it for code written
against the old path."""

import sys

from minsky.evals import stats

sys.modules[__name__] = stats
