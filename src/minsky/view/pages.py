"""The viewer's pages: a path and a query in, an HTTP status and an HTML page out.

One `App` serves both the local server and `--export`; only the links differ (`Links`).
Templates are Jinja with autoescaping on, so every piece of model and user text is
escaped where it is written; pages carry a Content-Security-Policy without scripts too,
so even a missed escape could not run anything. Pages refresh themselves (a meta
refresh, no JavaScript) while a run they show is still running.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from minsky.errors import MinskyError
from minsky.runlog import RunLog, with_run_id
from minsky.strict import error_line
from minsky.view import mindstorm, results, source, svg
from minsky.view.results import ResultsFile

MATRIX_PAGE = 100  # cases per page of an evaluation's matrix
TABLE_LIMIT = 1000  # rows of an arena's verdicts or an economy's tasks shown
TEXT_LIMIT = 20_000  # characters of one text shown before it is cut


class Links:
    """Where a page lives: a server path, or a file name in an exported folder."""

    def __init__(self, static: bool = False) -> None:
        self.static = static

    def runs(self, page: int = 1, **query: Any) -> str:
        if self.static:
            return "index.html" if page == 1 else f"runs-{page}.html"
        query = {k: v for k, v in query.items() if v not in ("", None, False)}
        if page > 1:
            query["page"] = page
        return "/" + (f"?{urlencode(query)}" if query else "")

    def run(self, run_id: str) -> str:
        return f"run-{run_id}.html" if self.static else f"/run/{run_id}"

    def run_json(self, run_id: str) -> str | None:
        return None if self.static else f"/run/{run_id}.json"  # exports carry no JSON

    def results(self, n: int, page: int = 1, **query: Any) -> str:
        if self.static:
            return f"results-{n}.html" if page == 1 else f"results-{n}-p{page}.html"
        query = {k: v for k, v in query.items() if v}
        if page > 1:
            query["page"] = page
        return f"/results/{n}" + (f"?{urlencode(query)}" if query else "")

    def results_index(self) -> str:
        return "results.html" if self.static else "/results"


def _clip(text: Any) -> str:
    text = "" if text is None else str(text)
    if len(text) <= TEXT_LIMIT:
        return text
    return text[:TEXT_LIMIT] + f"\n… ({len(text) - TEXT_LIMIT:,} more characters)"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _relative(start: Path) -> Any:
    """A filter showing a path relative to `start` (where the viewer was started) when it
    lies beneath it, and whole otherwise."""
    def relative(path: Any) -> str:
        absolute = os.path.abspath(path)
        try:
            inside = os.path.commonpath([absolute, str(start)]) == str(start)
        except ValueError:  # another drive
            inside = False
        return os.path.relpath(absolute, start) if inside else str(path)

    return relative


SORTS = ("case", "question", "gold", "right")  # and any society's name


class NotFound(MinskyError):
    """A page that is not there (404)."""


class BadRequest(MinskyError):
    """A query the page cannot take (400)."""


class App:
    """The viewer over one run log and some results files. Without a log (`log_path`
    None: a fresh home) the results pages work alone: no links to runs, no questions
    unless the rows carry them."""

    def __init__(self, log_path: Path | None, files: Sequence[ResultsFile],
                 links: Links | None = None, start: Path | None = None) -> None:
        self.log_path = log_path
        self.files = list(files)
        self.links = links or Links()
        self.env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters.update(clip=_clip, when=_when, pretty=results.pretty,
                                rel=_relative(Path(os.path.abspath(start or Path.cwd()))))
        self.env.tests["failed"] = results.failed
        self.env.globals.update(links=self.links, files=self.files, limit=TABLE_LIMIT,
                                log_path=log_path)
        self._cache: dict[tuple[Path, float, int], Any] = {}
        self._lock = threading.Lock()
        if log_path is not None:
            source.open_log(log_path).close()  # a missing or old log fails now, clearly

    def _log(self) -> RunLog:
        if self.log_path is None:
            raise NotFound("no run log: start the viewer with --log PATH to see runs")
        return source.open_log(self.log_path)

    # -- routing ------------------------------------------------------------------------

    def page(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        """(status, html) for a GET of `path` with `query`."""
        try:
            parts = [p for p in path.split("/") if p]
            if not parts:
                return 200, self.runs(query)
            if parts[0] == "run" and len(parts) == 2 and parts[1].endswith(".json"):
                return 200, self.run_json(parts[1].removesuffix(".json"))
            if parts[0] == "run" and len(parts) == 2:
                return 200, self.run(parts[1])
            if parts == ["results"]:
                return 200, self.render("results.html", title="results")
            if parts[0] == "results" and len(parts) == 2 and parts[1].isdigit():
                return 200, self.results(int(parts[1]), query)
            raise NotFound(f"no page at {path}")
        except NotFound as err:
            return 404, self.render("error.html", title="not found", message=str(err))
        except (BadRequest, MinskyError) as err:
            return 400, self.render("error.html", title="bad request", message=str(err))

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    # -- pages --------------------------------------------------------------------------

    def runs(self, query: dict[str, str]) -> str:
        try:
            q = source.RunQuery.model_validate(
                {**query, "top": query.get("top") in ("1", "on", "true")})
        except ValidationError as err:
            line = error_line(err, name=lambda path: f"query parameter {path or '?'}")
            raise BadRequest(line) from None
        if self.log_path is None:
            return self.render("runs.html", title="runs", q=q, filters={}, live=False,
                               runs=[], total=0, pages=1, societies=[], statuses=[])
        log = source.open_log(self.log_path)
        try:
            listing = source.list_runs(log, q)
            menus = source.choices(log)
        finally:
            log.close()
        live = any(r["status"] == "running" for r in listing["runs"])
        filters = q.model_dump(exclude={"page"}, exclude_defaults=True)
        return self.render("runs.html", title="runs", q=q, filters=filters, live=live,
                           **listing, **menus)

    def run(self, run_id: str) -> str:
        if not source.RUN_ID.match(run_id):
            raise NotFound(f"{run_id!r} is not a run id")
        log = self._log()
        try:
            view = mindstorm.build(log, run_id)
        except MinskyError as err:
            raise NotFound(str(err)) from None
        finally:
            log.close()
        run = view["run"]
        return self.render("run.html", title=f"run {run_id}", v=view,
                           live=run["status"] == "running")

    def run_json(self, run_id: str) -> str:
        """The run as the log holds it (what `minsky logs show --json` reads), as JSON."""
        if not source.RUN_ID.match(run_id):
            raise NotFound(f"{run_id!r} is not a run id")
        log = self._log()
        try:
            run = log.get_run(run_id)
        except MinskyError as err:
            raise NotFound(str(err)) from None
        finally:
            log.close()
        return json.dumps(with_run_id(run), indent=1, ensure_ascii=False, default=str) + "\n"

    def _file(self, n: int) -> ResultsFile:
        if not 1 <= n <= len(self.files):
            raise NotFound(f"no results file number {n} (this viewer has {len(self.files)})")
        return self.files[n - 1]

    def computed(self, file: ResultsFile) -> Any:
        """The file's page data, recomputed only when the file changes (arena intervals
        are a bootstrap, worth not redoing on every request)."""
        stat = file.path.stat()
        key = (file.path, stat.st_mtime, stat.st_size)
        with self._lock:
            if key not in self._cache:
                rows = results.read(file.path)
                compute = {"eval": results.evaluation, "arena": results.arena,
                           "economy": results.economy}[file.kind]
                self._cache = {k: v for k, v in self._cache.items() if k[0] != file.path}
                self._cache[key] = compute(rows)
            return self._cache[key]

    def _run_ids(self, ids: list[str]) -> set[str]:
        if self.log_path is None:
            return set()
        log = source.open_log(self.log_path)
        try:
            return source.known_runs(log, ids)
        finally:
            log.close()

    def _questions(self, data: dict[str, Any]) -> dict[str, str]:
        """Case id → question text: from the rows when they carry it, else from the runs
        in the log (any society's run of the case asked the same question). Kept with the
        file's page data once every case has one: a run's question never changes, and
        every page of the matrix (every sort, every page number) needs them all."""
        if "questions" in data:
            return dict(data["questions"])
        found = {case: str(row["question"]) for (case, _), row in data["cell"].items()
                 if row.get("question")}
        missing = {row["run_id"]: case for (case, _), row in data["cell"].items()
                   if case not in found and row.get("run_id")}
        if missing and self.log_path is not None:
            log = source.open_log(self.log_path)
            try:
                for run_id, question in source.questions(log, list(missing)).items():
                    found.setdefault(missing[run_id], question)
            finally:
                log.close()
        if len(found) == len({case for case, _ in data["cell"]}):
            data["questions"] = found  # the log may yet add the runs still missing
        return found

    def results(self, n: int, query: dict[str, str]) -> str:
        file = self._file(n)
        data = self.computed(file)
        if file.kind == "eval":
            return self._evaluation(n, file, data, query)
        if file.kind == "arena":
            return self._arena(n, file, data)
        return self._economy(n, file, data)

    def _evaluation(self, n: int, file: ResultsFile, data: dict[str, Any],
                    query: dict[str, str]) -> str:
        a, b = query.get("a", ""), query.get("b", "")
        for name in (a, b):
            if name and name not in data["societies"]:
                raise BadRequest(f"query parameter a/b: no society {name!r} in {file.path.name}")
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            raise BadRequest("query parameter page: expected a whole number") from None
        sort, order = query.get("sort", "case"), query.get("order", "asc")
        if sort not in SORTS and sort not in data["societies"]:
            raise BadRequest(f"query parameter sort: expected one of {', '.join(SORTS)} "
                             "or a society's name")
        if order not in ("asc", "desc"):
            raise BadRequest("query parameter order: expected asc or desc")
        questions = self._questions(data)
        cases = results.sort_cases(data, results.matrix_rows(data, a, b), questions, sort,
                                   order == "desc")
        pages = max(1, -(-len(cases) // MATRIX_PAGE))
        if not 1 <= page <= pages:
            raise BadRequest(f"query parameter page: expected 1 to {pages}")
        shown = cases[(page - 1) * MATRIX_PAGE: page * MATRIX_PAGE]
        ids = [data["cell"][(c, s)].get("run_id") for c in shown for s in data["societies"]
               if (c, s) in data["cell"]]
        res = [r for r in data["summary"]["results"] if r["n"]]  # all failed: no point
        accuracy = svg.intervals([(r["society"], r["accuracy"], r["ci_low"], r["ci_high"])
                                  for r in res], "accuracy (95 % Wilson interval)", 0, 1,
                                 percent=True)
        scaling = svg.scatter([(r["society"], r["calls_per_case"], r["accuracy"], r["ci_low"],
                                r["ci_high"]) for r in res
                               if r["calls_per_case"] is not None],  # converted rows: none
                              "model calls per case (log scale)", "accuracy")
        compute = svg.scatter([(r["society"], r["tokens_per_case"], r["accuracy"], r["ci_low"],
                                r["ci_high"]) for r in res],
                              "tokens per case (log scale)", "accuracy")
        return self.render("eval.html", title=file.title, n=n, file=file, d=data,
                           shown=shown, page=page, pages=pages, a=a, b=b,
                           known=self._run_ids(ids), accuracy=accuracy, compute=compute,
                           scaling=scaling, filtered=len(cases), questions=questions,
                           sort=sort, order=order, errored=results.errored(data))

    def _arena(self, n: int, file: ResultsFile, data: dict[str, Any]) -> str:
        board = data["board"]["leaderboard"]
        chart = svg.intervals([(r["contestant"], r["rating"], r["ci_low"], r["ci_high"])
                               for r in board], "Bradley–Terry rating (95 % bootstrap interval)")
        ids = [p[k]["run_id"] for p in data["pairs"] for k in ("ab", "ba") if p[k].get("run_id")]
        ids += [p[k]["run_id"] for p in data["pairs"] for k in ("answer_a", "answer_b")
                if p[k] and p[k].get("run_id")]
        return self.render("arena.html", title=file.title, n=n, file=file, d=data,
                           chart=chart, known=self._run_ids(ids))

    def _economy(self, n: int, file: ResultsFile, data: dict[str, Any]) -> str:
        chart = svg.lines({**data["series"], "total": data["total"]}, "task", "cents",
                          data["events"], dashed=["total"])
        ids = [t.get("run_id") for t in data["tasks"]]
        return self.render("economy.html", title=file.title, n=n, file=file, d=data,
                           chart=chart, known=self._run_ids([i for i in ids if i]))
