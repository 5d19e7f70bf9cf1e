"""Moved to `minsky.evals.contamination`; this name stays an alias of it for code written
against the old path."""

import sys

from minsky.evals import contamination

sys.modules[__name__] = contamination
