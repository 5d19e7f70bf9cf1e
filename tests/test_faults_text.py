"""Fault injection, text on the terminal (issue 28, section 2): model text is text.

A reply, a society name, a case id, a file name or a command-line value reaches the
terminal in every command — the `ask` summary, `logs list|show`, the `eval` table, the
progress lines of `batch`, `eval` and `arena`, the listings, error lines. None of it may
act on the terminal: no rich markup is read from it (a reply ending in "[/INST]" once
crashed `ask` after a successful run), and no control character, escape sequence,
bidirectional override or line separator is printed raw. Each command here exits as it
would on plain text, with no traceback.
"""

from __future__ import annotations

import io
import json
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from minsky import plugins
from minsky.backends.fakes import FunctionBackend, ScriptedBackend
from minsky.cli import main, progress
from minsky.inputs.safetext import json_printable, printable
from minsky.messages import ChatRequest
from minsky.plugin_api import BackendType, hookimpl

# what must never reach a terminal raw: C0 controls but tab and newline, DEL, C1 controls,
# bidirectional marks, embeddings, overrides and isolates, line and paragraph separators
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

MARKUP = "[/INST] [bold red]loud[/] [link=https://evil.example/]here[/link] [/]"
CONTROLS = ("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\ \x1b]0;title\x07"
            "\x1b[2J\x1b[1;31m \x9b2J \x9d8;;https://c1.example/\x9c \x07\x00")
BIDI = "\u202egnp.exe\u202c \u2066iso\u2069 \u202a\u202b\u202d \u200f"
SEPARATORS = "one\u2028two\u2029three"
HOSTILE = f"{MARKUP} {CONTROLS} {BIDI} {SEPARATORS}"
# a society name (society files name it freely) with brackets and controls in it
SOCIETY_NAME = r"soc[/b][bold]\u001b[2J\u009b\u202e\u2028"


def clean(result: Result, code: int = 0) -> str:
    """All a command printed, after checking it ended as it should and printed nothing
    that acts on a terminal."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), result.exception
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    found = RAW.search(out)
    assert found is None, (repr(found.group()), out)
    return out


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def hostile_model() -> Iterator[Callable[[str], None]]:
    """`hostile:` models: a scripted fake whose every reply is the text set here (by
    default the hostile text, ending in a number the extraction reads)."""
    reply = {"text": f"{HOSTILE}\nThe answer is 7. [/INST]"}

    def answer(request: ChatRequest) -> str:
        return reply["text"]

    def register_backends(register: Callable[[BackendType], None]) -> None:
        register(BackendType("hostile", lambda spec, settings: FunctionBackend(answer),
                             "\x1b]0;t\x07\x9b2J\u202e\u2028 [/INST] hostile replies"))
        # every reply an error: a run that fails
        register(BackendType("broken", lambda spec, settings: ScriptedBackend([]),
                             "fails every call"))

    module = types.ModuleType("minsky_hostile_plugin")
    module.register_backends = hookimpl(register_backends)  # type: ignore[attr-defined]
    pm = plugins.manager()
    pm.register(module)

    def set_reply(text: str) -> None:
        reply["text"] = text

    yield set_reply
    pm.unregister(module)
    plugins.manager.cache_clear()


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The progress bar drawn as on a terminal, into a buffer, without colours (so what
    is left of escape sequences in it is only what the bar itself moves the cursor by)."""
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(
        file=buffer, force_terminal=True, color_system=None, width=200))
    return buffer


def society(path: Path, name: str = SOCIETY_NAME, count: int = 1) -> Path:
    path.write_text(f'name = "{name}"\norganisation = "vote"\nmodel = "hostile:"\n'
                    f'description = "{name}"\n[[agents]]\nname = "a"\ncount = {count}\n',
                    encoding="utf-8")
    return path


# --- the one function ------------------------------------------------------------------


@pytest.mark.parametrize("char", [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20),
                                                   *range(0x7F, 0xA0), 0x061C, 0x200E,
                                                   0x200F, *range(0x2028, 0x202F),
                                                   *range(0x2066, 0x206A))])
def test_printable_shows_every_terminal_control_as_an_escape(char: str) -> None:
    shown = printable(f"a{char}b")
    assert RAW.search(shown) is None and shown.startswith("a\\") and shown.endswith("b")
    assert printable(f"a{char}b", line=True) == shown


def test_printable_keeps_text_and_on_one_line_shows_line_breaks() -> None:
    assert printable("naïve [/INST] 日本\tx\ny") == "naïve [/INST] 日本\tx\ny"
    assert printable("x\ty\nz", line=True) == "x\\x09y\\x0az"
    assert printable("lone \udc80") == "lone \ufffd"


def test_json_printable_is_the_same_json_and_safe() -> None:
    value = {"k\u202e": [HOSTILE, "lone \udc80", "·"]}
    dumped = json_printable(json.dumps(value, ensure_ascii=False))
    assert RAW.search(dumped) is None and "·" in dumped
    assert json.loads(dumped) == value


# --- ask, logs ---------------------------------------------------------------------------


def test_ask_shows_a_hostile_reply_and_society_name_as_text(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    soc = society(tmp_path / "s.toml", count=2)
    out = clean(run("ask", f"question {HOSTILE}", "-s", str(soc), "--answer", "text"))
    assert "[/INST]" in out and "soc[/b][bold]" in out  # brackets as they are
    assert "\\x1b" in out and "\\u202e" in out  # controls as escapes


def test_ask_json_keeps_the_text_exact_and_safe(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    soc = society(tmp_path / "s.toml")
    result = run("ask", "q", "-s", str(soc), "--answer", "text", "--json")
    clean(result)
    data = json.loads(result.stdout)
    assert HOSTILE in data["members"][0]["text"]
    assert data["society"].startswith("soc[/b][bold]\x1b[2J\x9b")


def test_logs_list_and_show_of_a_hostile_run(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    soc = society(tmp_path / "s.toml")
    result = run("ask", f"q {HOSTILE}", "-s", str(soc), "--answer", "text", "--json")
    clean(result)
    run_id = json.loads(result.stdout)["run_id"]
    listed = clean(run("logs", "list"))
    assert run_id in listed and "soc[/b]" in listed
    shown = clean(run("logs", "show", run_id))
    assert "[/INST]" in shown and "[link=https://evil.example/]" in shown
    assert "soc[/b][bold]" in shown
    assert json.loads(clean(run("logs", "show", run_id, "--json")))["answer"]


def test_a_reply_that_is_only_markup_closing_tags(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    hostile_model("[/] [/INST] [/bold] [/link] The answer is 7.")
    soc = society(tmp_path / "s.toml", name="plain")
    out = clean(run("ask", "q", "-s", str(soc)))
    assert "[/INST]" in out


# --- eval, batch, arena: tables and progress lines ----------------------------------------


def bench(path: Path) -> Path:
    rows = [{"id": f"case[/b]{i}\x1b[2J\u202e", "question": f"What is {i}? {HOSTILE}",
             "answer": "#### 7"} for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_with_a_hostile_society_name_and_cases(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    soc = society(tmp_path / "s.toml")
    out = clean(run("eval", "--bench", str(bench(tmp_path / "b.jsonl")), "-s", str(soc),
                    "-o", str(tmp_path / "r.jsonl")))
    assert "soc[/b][bold]" in out and "100.0%" in out


def test_eval_progress_bar_shows_the_society_name_as_text(
        tmp_path: Path, hostile_model: Callable[[str], None], screen: io.StringIO) -> None:
    soc = society(tmp_path / "s.toml")
    clean(run("eval", "--bench", str(bench(tmp_path / "b.jsonl")), "-s", str(soc),
              "-o", str(tmp_path / "r.jsonl")))
    drawn = screen.getvalue()
    assert "soc[/b][bold]" in drawn and "2/2" in drawn
    # the bar moves the cursor with CSI sequences of its own; none of the hostile ones
    # (clear the screen, OSC, C1) and no bidi control is drawn
    assert "\x1b[2J" not in drawn and "\x1b]" not in drawn
    assert re.search("[\x80-\x9f\u2028-\u202e\u2066-\u2069]", drawn) is None


def test_batch_progress_lines_show_hostile_answers_and_ids_as_text(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q[/b]{i}\x1b]0;t\x07\u2028",
                                             "question": HOSTILE}) + "\n" for i in range(2)))
    hostile_model(f"The answer is [/INST] {CONTROLS} {BIDI} {SEPARATORS}")
    soc = society(tmp_path / "s.toml")
    out = clean(run("batch", str(questions), "-s", str(soc), "--answer", "text",
                    "-o", str(tmp_path / "r.jsonl")))
    assert "q[/b]0" in out and "[/inst]" in out.lower()
    # one line per question: a line separator or newline in an answer does not make more
    assert sum(line.startswith("q[/b]") for line in out.splitlines()) == 2


def test_batch_progress_lines_under_a_drawn_bar(
        tmp_path: Path, hostile_model: Callable[[str], None], screen: io.StringIO) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("What is 1?\nWhat is 2?\n")
    hostile_model(f"The answer is [/INST] {CONTROLS} {BIDI} {SEPARATORS}")
    soc = society(tmp_path / "s.toml")
    clean(run("batch", str(questions), "-s", str(soc), "--answer", "text",
              "-o", str(tmp_path / "r.jsonl")))
    drawn = screen.getvalue()
    assert "[/inst]" in drawn.lower() and "soc[/b][bold]" in drawn
    assert "\x1b[2J" not in drawn and "\x1b]" not in drawn
    assert re.search("[\x80-\x9f\u2028-\u202e\u2066-\u2069]", drawn) is None


def test_arena_progress_and_board_with_hostile_contestants(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"question_id": "p[/b]\x1b[2J", "turns": [HOSTILE]}) + "\n")
    a = society(tmp_path / "a.toml", name=r"a[/b]\u202e")
    b = society(tmp_path / "b.toml", name=r"b[bold]\u001b]8;;x\u0007")
    out = clean(run("arena", "--prompts", str(prompts), "--contestant", str(a),
                    "--contestant", str(b), "--judge", str(society(tmp_path / "j.toml")),
                    "-o", str(tmp_path / "r.jsonl")))
    assert "a[/b]" in out and "b[bold]" in out


# --- listings and error lines -------------------------------------------------------------


def test_plugins_listing_shows_a_hostile_description_as_text(
        hostile_model: Callable[[str], None]) -> None:
    out = clean(run("plugins"))
    assert "hostile" in out and "[/INST]" in out


def test_an_error_line_names_a_hostile_file_safely(tmp_path: Path) -> None:
    missing = f"{tmp_path}/s[/b]\x1b]0;t\x07\u202e\n.toml"
    out = clean(run("ask", "q", "-s", missing), code=2)
    assert out.startswith("error: ") and out.count("\n") == 1 and "s[/b]" in out


def test_an_unexpected_argument_is_quoted_safely() -> None:
    # click quotes a bad option value with repr(), but an extra argument as it is
    out = clean(run("logs", "list", "x\x1b]0;t\x07\u202e[/b]\u2028y\x9b2J"), code=2)
    assert out.startswith("error: ") and out.count("\n") == 1 and "[/b]" in out


def test_the_failed_runs_line_names_a_hostile_society_safely(
        tmp_path: Path, hostile_model: Callable[[str], None]) -> None:
    soc = tmp_path / "s.toml"
    soc.write_text(f'name = "{SOCIETY_NAME}"\norganisation = "single"\nmodel = "broken:"\n'
                   '[[agents]]\nname = "a"\n', encoding="utf-8")
    out = clean(run("eval", "--bench", str(bench(tmp_path / "b.jsonl")), "-s", str(soc),
                    "-o", str(tmp_path / "r.jsonl")), code=1)
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: 2 case(s) failed (soc[/b][bold]")
