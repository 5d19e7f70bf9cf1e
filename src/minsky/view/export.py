"""`minsky view --export DIR`: the same pages written as a static folder.

Every page the server would show, with links between files instead of server paths:
`index.html` and `runs-N.html` (the runs list, unfiltered), `run-ID.html` for every run,
`results.html` and `results-N.html` (with `results-N-pK.html` for more matrix pages).
Filters need the server; the static pages leave their forms out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from minsky.view import source
from minsky.view.pages import MATRIX_PAGE, App, Links
from minsky.view.results import ResultsFile


def export(log_path: Path | None, files: Sequence[ResultsFile], out: Path,
           progress: Callable[[str], None] | None = None) -> int:
    """Write every page under `out`; returns the number of files written."""
    app = App(log_path, files, Links(static=True))
    out.mkdir(parents=True, exist_ok=True)
    written = 0

    def write(name: str, path: str, query: dict[str, str] | None = None) -> None:
        nonlocal written
        status, html = app.page(path, query or {})
        if status != 200:
            return  # a run removed while exporting; its link stays, like any dead run id
        (out / name).write_text(html, encoding="utf-8")
        written += 1

    ids: list[str] = []
    if log_path is not None:  # none: the results files alone
        log = source.open_log(log_path)
        try:
            ids = source.all_run_ids(log)
        finally:
            log.close()
    per_page = source.RunQuery().per_page
    for page in range(1, max(1, -(-len(ids) // per_page)) + 1):
        write(app.links.runs(page), "/", {"page": str(page)})
    for i, run_id in enumerate(ids, 1):
        write(app.links.run(run_id), f"/run/{run_id}")
        if progress and i % 500 == 0:
            progress(f"{i}/{len(ids)} runs")
    write(app.links.results_index(), "/results")
    for n, file in enumerate(files, 1):
        pages = 1
        if file.kind == "eval":
            pages = max(1, -(-len(app.computed(file)["cases"]) // MATRIX_PAGE))
        for page in range(1, pages + 1):
            write(app.links.results(n, page), f"/results/{n}", {"page": str(page)})
    return written
