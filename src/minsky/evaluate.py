"""Moved to `minsky.evals.harness`; this name stays an alias of it for code written
against the old path."""

import sys

from minsky.evals import harness

sys.modules[__name__] = harness
