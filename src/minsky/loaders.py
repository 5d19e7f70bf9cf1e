"""Moved to `minsky.evals` (`formats` and `benchmarks`); this name is kept for code
written against it."""

from minsky.evals.benchmarks import detect_loader, load_benchmark
from minsky.evals.formats import LETTERS, LOADERS, MAPPING_KEYS, score
from minsky.plugin_api import Case, LoaderType

__all__ = ["LETTERS", "LOADERS", "MAPPING_KEYS", "Case", "LoaderType", "detect_loader",
           "load_benchmark", "score"]
