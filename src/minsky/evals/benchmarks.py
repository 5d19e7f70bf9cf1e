"""Loading a benchmark: detect its format among the registered ones, sample, make ids unique.

The formats themselves are in `minsky.evals.formats`; this module consults the plugin
registry, so a plugin's format is detected like a built-in one.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from minsky.errors import MinskyError
from minsky.evals.formats import files_of, loader_of, mapped, rows_of
from minsky.inputs.records import unique_ids
from minsky.plugin_api import Case, LoaderType
from minsky.plugins import loader_types


def detect_loader(ref: str | Path) -> LoaderType:
    """The loader whose format the first record of `ref` (a file, or a folder's first
    .jsonl file by name) has."""
    first = files_of(Path(ref))[0]
    rows = rows_of(first)
    try:
        row = next(rows, None)
    finally:
        rows.close()
    if row is None:
        raise MinskyError(f"benchmark {first} holds no records")
    loaders = list(loader_types().values())  # the built-ins are LOADERS, via the plugin hook
    for loader in loaders:
        if loader.detect(row.data):
            return loader
    raise MinskyError(
        f"{first}:{row.line}: unknown benchmark format (fields: "
        f"{', '.join(sorted(row.data)) or 'none'}); known formats: "
        f"{', '.join(x.name for x in loaders)}; for another format map its fields, "
        "e.g. --map question=KEY,answer=KEY[,choices=KEY]")


def load_benchmark(ref: str | Path, limit: int | None = None, seed: int | None = None,
                   mapping: dict[str, str] | None = None) -> list[Case]:
    """Cases from a benchmark file or folder: the format is detected, or given by `mapping`
    (question, answer, optional choices and id, each naming a record field).

    Without `seed` the first `limit` cases; with it a fixed random sample of `limit`
    (the same for the same seed, file and limit), kept in file order.
    """
    if limit is not None and limit < 1:
        raise MinskyError(f"limit must be at least 1, got {limit}")
    path = Path(ref).expanduser()
    load = loader_of(mapped(mapping)) if mapping is not None else detect_loader(path).load
    cases = load(path)
    # a repeated id would make a rerun take one case for the other: make each distinct
    ids = unique_ids([c.id for c in cases])
    cases = [c if c.id == i else replace(c, id=i) for c, i in zip(cases, ids, strict=True)]
    if limit is None or limit >= len(cases):
        return cases
    if seed is None:
        return cases[:limit]
    return [cases[i] for i in sorted(random.Random(seed).sample(range(len(cases)), limit))]


