"""`minsky view` without a browser: pages, safety, live refresh, export and the command."""

from __future__ import annotations

import asyncio
import http.client
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import view_fixtures
from click.testing import CliRunner

from minsky.cli import main
from minsky.messages import Usage
from minsky.runlog import RunLog
from minsky.view.export import export
from minsky.view.pages import App, Links
from minsky.view.results import detect, economy, read
from minsky.view.server import ViewServer
from minsky.view.source import open_log

REAL = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> view_fixtures.ViewFixture:
    return asyncio.run(view_fixtures.build(tmp_path_factory.mktemp("view")))


@pytest.fixture(scope="module")
def app(fixture: view_fixtures.ViewFixture) -> App:
    files = [detect(p) for p in (fixture.eval_file, fixture.arena_file, fixture.economy_file)]
    return App(fixture.log, files)


def test_every_page_renders_and_escapes_model_text(app: App, fixture) -> None:
    for path in ("/", f"/run/{fixture.nested_run}", "/results", "/results/1", "/results/2",
                 "/results/3"):
        status, html = app.page(path, {})
        assert status == 200, path
        assert "<script" not in html, path
    html = app.page(f"/run/{fixture.nested_run}", {})[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_the_log_is_never_written(fixture, app: App) -> None:
    before = fixture.log.read_bytes()
    for _ in range(3):
        app.page("/", {"q": "picnic"})
        app.page(f"/run/{fixture.nested_run}", {})
    assert fixture.log.read_bytes() == before
    log = open_log(fixture.log)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        log.db.execute("DELETE FROM runs")
    log.close()


def test_runs_list_filters_pages_and_bounds(app: App) -> None:
    status, html = app.page("/", {"society": "judge", "per_page": "2", "page": "2"})
    assert status == 200 and "4 run(s)" in html and "page 2 of 2" in html
    assert html.count('<tr class="run">') == 2
    status, html = app.page("/", {"q": "100%"})  # LIKE wildcards are taken literally
    assert status == 200 and "no runs match" in html
    status, html = app.page("/", {"per_page": "5000"})
    assert status == 400 and "query parameter per_page" in html
    assert app.page("/", {"sort": "x"})[0] == 400
    assert app.page("/", {"top": "1"})[1].count('<tr class="run">') == 27  # 2 sub-runs hidden


def test_runs_list_links_a_parent_to_its_sub_runs(app: App, fixture) -> None:
    html = app.page("/", {})[1]
    assert f'href="/?parent={fixture.nested_run}">2 sub-run(s)</a>' in html
    status, html = app.page("/", {"parent": fixture.nested_run})
    assert status == 200 and html.count('<tr class="run">') == 2
    assert "team-calc" in html and "team-words" in html
    assert app.page("/", {"parent": "x' OR 1=1"})[0] == 400


def test_unknown_pages_are_404s_that_say_why(app: App) -> None:
    status, html = app.page("/run/01M8QE7SEA3J6NCJVDT46HJE49", {})
    assert status == 404 and "is not in the log" in html
    assert app.page("/run/../../etc/passwd", {})[0] == 404
    status, html = app.page("/results/9", {})
    assert status == 404 and "no results file number 9" in html
    status, html = app.page("/results/1", {"a": "careful", "b": "nobody"})
    assert status == 400 and "no society &#39;nobody&#39;" in html


def test_a_running_run_refreshes_until_it_finishes(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "live.db")
    log.start_run("01M8QE7SEA3J6NCJVDT46HJE49", "solo", {}, "q?", "number", {})
    app = App(tmp_path / "live.db", [])
    refresh = 'http-equiv="refresh"'
    assert refresh in app.page("/", {})[1]
    assert refresh in app.page("/run/01M8QE7SEA3J6NCJVDT46HJE49", {})[1]
    log.finish_run("01M8QE7SEA3J6NCJVDT46HJE49", "ok", "4", {}, Usage(1, 1), 0.1)
    assert refresh not in app.page("/", {})[1]
    assert refresh not in App(tmp_path / "live.db", [], Links(static=True)).page("/", {})[1]
    log.close()


@pytest.fixture
def served(app: App) -> Iterator[tuple[str, int]]:
    server = ViewServer("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


def request(where: tuple[str, int], method: str, path: str,
            headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(*where, timeout=10)
    conn.request(method, path, headers=headers or {})
    return conn.getresponse()


def test_server_is_get_only_and_sends_a_strict_policy(served) -> None:
    reply = request(served, "GET", "/")
    assert reply.status == 200
    assert "default-src 'none'" in reply.getheader("Content-Security-Policy", "")
    assert reply.getheader("X-Content-Type-Options") == "nosniff"
    assert request(served, "POST", "/").status == 501
    assert request(served, "DELETE", "/run/x").status == 501


def test_server_on_loopback_refuses_other_host_names(served) -> None:
    assert request(served, "GET", "/", {"Host": "evil.example:8765"}).status == 400
    assert request(served, "GET", "/", {"Host": "localhost:8765"}).status == 200


def test_a_page_that_fails_is_a_500_with_one_line(served, app: App,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str, query: dict[str, str]) -> tuple[int, str]:
        raise KeyError("gold")

    monkeypatch.setattr(app, "page", broken)
    reply = request(served, "GET", "/results/1")
    assert reply.status == 500 and reply.read() == b"error: KeyError: 'gold'\n"


def test_export_writes_linked_static_pages(fixture, tmp_path: Path) -> None:
    files = [detect(fixture.eval_file), detect(fixture.arena_file)]
    written = export(fixture.log, files, tmp_path / "site")
    site = tmp_path / "site"
    names = {p.name for p in site.iterdir()}
    assert {"index.html", "results.html", "results-1.html", "results-2.html",
            f"run-{fixture.nested_run}.html"} <= names
    assert written == len(names) == 29 + 4
    index = (site / "index.html").read_text()
    assert 'href="/' not in index and f'href="run-{fixture.nested_run}.html"' in index
    assert "<form" not in index  # filters need the server
    matrix = (site / "results-1.html").read_text()
    assert 'href="run-' in matrix


def test_results_files_in_the_repository_are_recognised() -> None:
    kinds = {p.name: detect(p).kind for p in REAL.glob("*.jsonl")
             if p.name.startswith(("eval-", "arena-", "economy-"))}
    assert kinds and all(kind == name.split("-")[0] for name, kind in kinds.items())


def test_economy_replay_matches_its_audit() -> None:
    path = REAL / "economy-vote5.jsonl"
    data = economy(read(path))
    assert data["audit"]["conserved"]
    assert sum(data["final"].values()) == data["audit"]["actual_total"] == data["total"][-1][1]
    assert [g["members"] for g in data["generations"]] == [5, 5, 4, 4]  # as its report says


def test_command_errors_are_one_line_and_exit_2(tmp_path: Path, fixture) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["view", "--log", str(tmp_path / "no.db")])
    assert missing.exit_code == 2 and missing.output.strip() == (
        f"error: no run log at {tmp_path / 'no.db'}")
    bogus = tmp_path / "x.jsonl"
    bogus.write_text('{"hello": 1}\n')
    bad = runner.invoke(main, ["view", "--log", str(fixture.log), "--results", str(bogus)])
    assert bad.exit_code == 2 and "not an eval, arena or economy results file" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    port = runner.invoke(main, ["view", "--port", "70000"])
    assert port.exit_code == 2 and "--port" in port.output


def test_command_exports(tmp_path: Path, fixture) -> None:
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["view", "--log", str(fixture.log), "--results",
                                       str(fixture.economy_file), "--export", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 32 pages" in result.output and (out / "results-1.html").is_file()


async def test_run_page_shows_budget_stops_and_failed_calls(tmp_path: Path,
                                                            make_society) -> None:
    from minsky.backends.fakes import FunctionBackend, ScriptedBackend
    from minsky.backends.registry import Backends
    from minsky.runner import Runner

    log = RunLog(tmp_path / "b.db")
    debate = make_society(organisation="debate", budget={"max_rounds": 1}, params={"rounds": 3},
                          agents=[{"name": "debater", "group": "debater", "count": 3}])
    stopped = await Runner(Backends(overrides={"fake:a": FunctionBackend(
        lambda r: "The answer is 4.")}), log).run(debate, "2+2?")
    # three members, two scripted replies: the third call fails
    failing = await Runner(Backends(overrides={"fake:a": ScriptedBackend(
        ["The answer is 4.", "The answer is 4."])}), log).run(make_society(), "2+2?")
    log.close()
    app = App(tmp_path / "b.db", [])
    html = app.page(f"/run/{stopped.run_id}", {})[1]
    assert "budget stop before round 2" in html and "max_rounds" in html
    html = app.page(f"/run/{failing.run_id}", {})[1]
    assert "error: scripted backend: no reply left" in html


def test_economy_run_page_lists_its_ledger(app: App, fixture) -> None:
    task = next(r for r in read(fixture.economy_file) if r.get("kind") == "task")
    html = app.page(f"/run/{task['run_id']}", {})[1]
    assert "<h4>Ledger</h4>" in html and "rent for" in html


def test_an_eval_society_whose_every_case_failed_is_shown_with_its_errors(
        tmp_path: Path, fixture) -> None:
    import json

    def row(case: str, society: str, status: str) -> dict[str, object]:
        ok = status == "ok"
        return {"case": case, "society": society, "answer": "2" if ok else None,
                "gold": "2", "correct": ok, "prompt_tokens": 1, "completion_tokens": 1,
                "calls": 1, "wall_s": 0.1, "status": status}

    path = tmp_path / "eval-errors.jsonl"
    rows = [row(c, "fine", "ok") for c in ("c1", "c2")]
    rows += [row(c, "dead", "error") for c in ("c1", "c2")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    status, html = App(fixture.log, [detect(path)]).page("/results/1", {})
    assert status == 200
    assert "0 + 2 errors" in html and "dead" in html


# -- issue 29, item 7: a new user's viewer ------------------------------------------------


def test_a_results_file_alone_is_enough_on_a_fresh_home(fixture, tmp_path: Path) -> None:
    app = App(None, [detect(fixture.eval_file)])
    for path in ("/", "/results", "/results/1"):
        assert app.page(path, {})[0] == 200, path
    assert 'id="nolog"' in app.page("/", {})[1]
    status, html = app.page(f"/run/{fixture.nested_run}", {})
    assert status == 404 and "no run log" in html
    assert 'href="/run/' not in app.page("/results/1", {})[1]  # no links to missing runs
    # the command, in the fresh home conftest gives every test
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["view", "--results", str(fixture.eval_file),
                                       "--export", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "results-1.html").is_file() and (out / "index.html").is_file()


def test_the_case_matrix_shows_the_question_and_sorts(app: App) -> None:
    import re

    def order(query: dict[str, str]) -> list[str]:
        status, html = app.page("/results/1", query)
        assert status == 200
        return re.findall(r"<tr><td>(c\d)</td>", html)

    html = app.page("/results/1", {})[1]
    assert '<td class="text question">What is 3+3?' in html
    assert order({}) == [f"c{i}" for i in range(6)]
    assert order({"sort": "case", "order": "desc"}) == [f"c{i}" for i in range(5, -1, -1)]
    assert order({"sort": "sloppy3"}) == ["c0", "c2", "c4", "c1", "c3", "c5"]  # right first
    assert order({"sort": "right", "order": "desc"})[:3] == ["c0", "c2", "c4"]
    assert order({"sort": "question", "order": "desc"})[0] == "c5"
    assert 'href="/results/1?sort=sloppy3&amp;order=desc"' in app.page(
        "/results/1", {"sort": "sloppy3"})[1]  # the header link turns the order round
    assert app.page("/results/1", {"sort": "nobody"})[0] == 400
    assert app.page("/results/1", {"order": "sideways"})[0] == 400


def test_search_looks_inside_the_members_replies(app: App) -> None:
    # "words idea" is only ever said by a member of team-words, never asked or decided
    status, html = app.page("/", {"q": "words idea"})
    assert status == 200 and "no runs match" not in html
    everything = app.page("/", {})[1]
    shown = re.findall(r'<a href="/run/([0-9A-Z]{26})"', html)
    # only the team-words runs, not every run of the log
    assert shown and len(shown) < len(re.findall(r'<a href="/run/([0-9A-Z]{26})"', everything))
    assert app.page("/", {"q": "no member ever said this"})[1].count('href="/run/') == 0


def test_paths_are_shown_relative_to_where_the_viewer_started(fixture) -> None:
    app = App(fixture.log, [detect(fixture.eval_file)], start=fixture.eval_file.parent)
    for path in ("/results", "/results/1"):
        html = app.page(path, {})[1]
        assert str(fixture.eval_file) not in html, path
        assert "eval-fake.jsonl" in html
    outside = App(fixture.log, [detect(fixture.eval_file)], start=fixture.log.parent / "subs")
    assert str(fixture.eval_file) in outside.page("/results", {})[1]  # above it: whole


def test_a_run_page_offers_its_raw_json(app: App, fixture, served) -> None:
    import json

    html = app.page(f"/run/{fixture.nested_run}", {})[1]
    assert f'href="/run/{fixture.nested_run}.json"' in html
    reply = request(served, "GET", f"/run/{fixture.nested_run}.json")
    assert reply.status == 200
    assert reply.getheader("Content-Type", "").startswith("application/json")
    run = json.loads(reply.read())
    assert run["id"] == run["run_id"] == fixture.nested_run
    assert run["calls"] and len(run["children"]) == 2
    assert app.page("/run/01M8QE7SEA3J6NCJVDT46HJE49.json", {})[0] == 404
    missing = request(served, "GET", "/run/01M8QE7SEA3J6NCJVDT46HJE49.json")
    # the error page is HTML, and says so
    assert missing.status == 404
    assert missing.getheader("Content-Type", "").startswith("text/html")
    static = App(fixture.log, [], Links(static=True))
    assert ".json" not in static.page(f"/run/{fixture.nested_run}", {})[1]


def test_errored_cases_are_shown_apart_in_the_matrix_and_counted(tmp_path: Path,
                                                                fixture) -> None:
    import json

    rows = [{"case": c, "society": s, "answer": "2" if s == "fine" else None, "gold": "2",
             "correct": s == "fine", "status": "ok" if s == "fine" else "error",
             "prompt_tokens": 1, "completion_tokens": 1, "calls": 1, "wall_s": 0.1}
            for c in ("c1", "c2", "c3") for s in ("fine", "dead")]
    path = tmp_path / "eval-errors.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = App(fixture.log, [detect(path)]).page("/results/1", {})[1]
    assert '<span class="warn" id="errored">3 failed runs' in html
    assert html.count('<td class="err"') == 3 and "⚠ error" in html
    assert html.count('<td class="no"') == 0  # a failed run is not a wrong answer
