"""`minsky view` in a real headless Chromium: the real server, the real pages, clicks.

The server is started as `python -m minsky view` over a log and results files made by
real societies on fake backends (tests/view_fixtures.py); one browser serves the whole
module. Chromium and its driver are Debian's `chromium` and `chromium-driver` (installed
by .ci/run); without them these tests fail, saying what to install.

Set MINSKY_VIEW_SCREENSHOTS=DIR to keep the screenshots (docs/view-*.png come from here).
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import view_fixtures

from minsky.runlog import RunLog

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "benchmarks" / "results"
# real results files, shown beside the fake ones (the screenshots use them)
REAL_FILES = ["eval-arc50.jsonl", "arena-mtbench10.jsonl", "economy-vote5.jsonl"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> view_fixtures.ViewFixture:
    return asyncio.run(view_fixtures.build(tmp_path_factory.mktemp("view")))


def start_server(args: list[str], env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[str], str]:
    """`minsky view ARGS --port 0` in a subprocess, and the URL it says it serves."""
    proc = subprocess.Popen([sys.executable, "-m", "minsky", "view", *args, "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        raise AssertionError("minsky view printed nothing in 60 s") from None
    if "http://" not in line:
        proc.kill()
        raise AssertionError(f"minsky view did not start: {line}")
    return proc, "http://" + line.split("http://")[1].split()[0]


@pytest.fixture(scope="module")
def server(fixture: view_fixtures.ViewFixture) -> Iterator[str]:
    files = [fixture.eval_file, fixture.arena_file, fixture.economy_file,
             *(REAL / name for name in REAL_FILES)]
    args = ["--log", str(fixture.log)]
    for f in files:
        args += ["--results", str(f)]
    proc, url = start_server(args)
    yield url.rstrip("/")
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and DRIVER):
        pytest.fail(f"these tests need Chromium and its driver: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("these tests need selenium: pip install -e '.[test]'")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


def shoot(driver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("MINSKY_VIEW_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"view-{name}.png"
    assert driver.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def follow(browser, element) -> None:
    """Click a link or button and wait until the next page has replaced this one (a click
    only starts the navigation; reading at once can read the old page)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.find_element("tag name", "html")
    element.click()
    WebDriverWait(browser, 10).until(ec.staleness_of(page))


def test_runs_list_filters_and_links_parents(browser, server, fixture, tmp_path) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(server + "/")
    log = RunLog(fixture.log)
    total = len(log.list_runs(1000))
    log.close()
    rows = by_css(browser, "#runs tr.run")
    assert len(rows) == total  # under one page
    assert f"{total} run(s)" in browser.find_element("tag name", "h2").text
    shoot(browser, "runs", tmp_path)
    Select(by_css(browser, "select[name=society]")[0]).select_by_visible_text("team-calc")
    follow(browser, by_css(browser, "form.filters button")[0])
    rows = by_css(browser, "#runs tr.run")
    assert len(rows) == 1 and "team-calc" in rows[0].text
    follow(browser, rows[0].find_element("link text", "parent"))
    assert fixture.nested_run in browser.find_element("tag name", "h2").text


def test_nested_run_page_shows_tool_call_votes_and_backend_call(browser, server, fixture,
                                                                tmp_path) -> None:
    browser.get(f"{server}/run/{fixture.nested_run}")
    heads = [th.text for th in by_css(browser, "table.mindstorm")[0]
             .find_elements("css selector", ":scope > tbody > tr > th")]
    assert heads[:6] == ["round", "calc (proposer)", "words (proposer)",
                         *(f"critic-{i} (critic)" for i in (1, 2, 3))]
    assert heads[6].split() == ["1", "propose"] and heads[7].split() == ["2", "critique"]
    subs = by_css(browser, "details.sub")
    assert [s.find_element("tag name", "summary").text.split(":")[0] for s in subs] == [
        "sub-society team-calc", "sub-society team-words"]
    tool = by_css(browser, "details.sub .tool")[0]
    assert not tool.is_displayed()  # folded until opened
    subs[0].find_element("tag name", "summary").click()
    assert tool.is_displayed() and tool.text == "Calculator(17*23+4) → 395"
    tally = by_css(browser, "table.tally")[-1].text
    assert "calc 3" in tally and "words 0" in tally
    assert "critic-1 → A" in browser.page_source
    assert by_css(browser, ".decision")[-1].text.startswith("we are [calculator(17*23+4)->395]")
    # the backend call of critic-1: one click away
    backend = by_css(browser, "table.mindstorm")[0].find_elements(
        "css selector", ":scope > tbody > tr:last-child details.backend")[0]
    request = backend.find_elements("tag name", "pre")[0]
    assert not request.is_displayed()
    backend.find_element("tag name", "summary").click()
    assert request.is_displayed() and "You are a critic." in request.text
    assert "usage" in backend.text and "latency" in backend.text
    browser.get(f"{server}/run/{fixture.nested_run}")  # the picture: from the top, folded
    subs = by_css(browser, "details.sub")
    subs[0].find_element("tag name", "summary").click()
    browser.execute_script("window.scrollTo(0, 0)")
    shoot(browser, "run", tmp_path)


def test_a_script_in_a_reply_is_text_and_never_runs(browser, server, fixture) -> None:
    browser.get(f"{server}/run/{fixture.nested_run}")
    said = [e.text for e in by_css(browser, ".said") if "lemonade" in e.text]
    assert said and all(view_fixtures.SCRIPT in t for t in said)
    assert by_css(browser, "script") == []  # no element was made of it
    assert by_css(browser, "main b") and all(
        "not bold" not in b.text for b in by_css(browser, "main b"))
    assert "<b>not bold</b>" in by_css(browser, ".said")[0].text
    assert no_alert(browser)
    assert browser.execute_script("return document.title").startswith("run ")  # page alive


def test_evaluation_page_matrix_opens_the_runs(browser, server, tmp_path) -> None:
    browser.get(server + "/results/1")
    table = by_css(browser, "#accuracy tr")
    assert [r.text.split()[:4] for r in table[1:]] == [
        ["careful", "6", "6", "100.0%"], ["sloppy3", "6", "3", "50.0%"]]
    assert len(by_css(browser, "svg")) == 3  # intervals; accuracy against calls, tokens
    points = by_css(browser, "#scaling svg text")
    assert {"careful", "sloppy3"} <= {p.text for p in points}
    paired = by_css(browser, "#paired tr")[1].text
    assert paired.startswith("sloppy3 -50.0% 6 0 3")
    follow(browser, browser.find_element("link text", "careful right, sloppy3 wrong"))
    cases = [r.find_elements("tag name", "td")[0].text for r in by_css(browser, "#matrix tr")[1:]]
    assert cases == ["c1", "c3", "c5"]
    cell = by_css(browser, "#matrix td.no a")[0]
    assert cell.text.startswith("✗ 3")
    follow(browser, cell)
    assert by_css(browser, ".said")[0].text.startswith("What is 1+1?")
    browser.get(server + "/results/4")  # a real evaluation file, for the picture
    assert "eval-arc50.jsonl" in browser.find_element("tag name", "h2").text
    shoot(browser, "eval", tmp_path)


def test_arena_page_shows_flips_and_position_bias(browser, server, tmp_path) -> None:
    browser.get(server + "/results/2")
    rows = by_css(browser, "#leaderboard tr")[1:]
    assert sorted(r.text.split()[0] for r in rows) == ["terse", "verbose"]
    # the judge always says A: every pair flips with the order, so every game is a tie
    assert all(r.text.endswith("0 / 2 / 0") for r in rows)
    biases = browser.find_element("id", "biases").text
    assert "order flips: 100% of 2 pairs" in biases
    assert "the answer shown first won 100% of 4 decisive verdicts" in biases
    verdicts = by_css(browser, "#verdicts tr")[1:]
    assert len(verdicts) == 2 and all("tie (flipped)" in v.text for v in verdicts)
    verdicts[0].find_element("tag name", "summary").click()
    assert view_fixtures.SCRIPT in verdicts[0].text and no_alert(browser)
    browser.get(server + "/results/5")
    assert len(by_css(browser, "#leaderboard tr")) == 4
    shoot(browser, "arena", tmp_path)


def test_economy_page_draws_wealth_births_and_bankruptcies(browser, server, tmp_path) -> None:
    browser.get(server + "/results/3")
    assert len(by_css(browser, "#wealth polyline")) >= 4  # three members and the total
    gens = [r.text for r in by_css(browser, "#generations tr")[1:]]
    assert len(gens) == 2 and "m-1.1, m-2.1" in gens[0]  # children were born
    browser.get(server + "/results/6")
    gens = [r.text for r in by_css(browser, "#generations tr")[1:]]
    assert "solver-1" in gens[2]  # bankrupt in generation 3 (the report says so too)
    shoot(browser, "economy", tmp_path)


def test_the_run_grid_scrolls_sideways_instead_of_cutting_members_off(browser, server,
                                                                       fixture) -> None:
    browser.set_window_size(640, 900)  # narrower than five members side by side
    try:
        browser.get(f"{server}/run/{fixture.nested_run}")
        grid = by_css(browser, "div.grid")[0]
        inner, box, page, window = browser.execute_script(
            "const g = arguments[0]; return [g.scrollWidth, g.clientWidth, "
            "document.documentElement.scrollWidth, document.documentElement.clientWidth]",
            grid)
        assert inner > box  # the grid is wider than its box, so it scrolls
        assert page <= window  # and the page around it does not
        last = grid.find_elements("css selector", ":scope > table > tbody > tr > th")[5]
        assert last.text.startswith("critic-3")
        browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth", grid)
        left, right, g_left, g_right = browser.execute_script(
            "const a = arguments[0].getBoundingClientRect(), "
            "b = arguments[1].getBoundingClientRect(); return [a.left, a.right, b.left, b.right]",
            last, grid)
        assert g_left - 1 <= left and right <= g_right + 1  # the last member, in full view
    finally:
        browser.set_window_size(1280, 900)


def test_the_case_matrix_shows_questions_and_sorts_by_a_click(browser, server) -> None:
    def cases() -> list[str]:
        rows = by_css(browser, "#matrix tr")[1:]
        return [r.find_elements("tag name", "td")[0].text for r in rows]

    def header(name: str):
        return next(a for a in by_css(browser, "#matrix th a.sort") if a.text.split()[0] == name)

    browser.get(server + "/results/1")
    questions = [td.text for td in by_css(browser, "#matrix td.question")]
    assert questions[0].startswith("What is 0+0?") and len(questions) == 6
    follow(browser, header("sloppy3"))
    assert cases() == ["c0", "c2", "c4", "c1", "c3", "c5"]  # its right answers first
    assert header("sloppy3").text == "sloppy3 ▲"
    follow(browser, header("sloppy3"))
    assert cases() == ["c1", "c3", "c5", "c0", "c2", "c4"]
    follow(browser, header("question"))
    assert [td.text for td in by_css(browser, "#matrix td.question")] == sorted(questions)


def test_a_run_page_links_its_raw_json(browser, server, fixture) -> None:
    import json

    browser.get(f"{server}/run/{fixture.nested_run}")
    follow(browser, browser.find_element("id", "raw"))
    text = browser.find_element("tag name", "body").text
    assert json.loads(text)["id"] == fixture.nested_run
