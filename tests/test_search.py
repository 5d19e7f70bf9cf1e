"""The Search tool: BM25 ranking, collections, the JSON cache, and the Tool's text."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minsky.paths import cache_dir
from minsky.tools import search
from minsky.tools.base import ToolError
from minsky.tools.search import (
    MAX_WORDS,
    STOPWORDS,
    Passage,
    SearchIndex,
    make_search,
    split_passages,
    tokenize,
    truncate,
)

DOCS = [
    {"id": "d1", "title": "cats", "text": "The cat sat on the mat"},
    {"id": "d2", "title": "dogs", "text": "Dogs chase the cat"},
    {"id": "d3", "text": "Birds sing"},
]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "docs.jsonl", DOCS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.txt").write_text("Canberra is the capital of Australia.\n", encoding="utf-8")
    (root / "b.md").write_text("# France\n\nParis is the capital of France.\n", encoding="utf-8")
    (root / "sub" / "c.txt").write_text("Kangaroos live in Australia.\n", encoding="utf-8")
    (root / "ignored.pdf").write_text("Australia Australia Australia", encoding="utf-8")
    (root / ".hidden" / "d.txt").write_text("Australia Australia Australia", encoding="utf-8")
    return root


def cache_files() -> list[Path]:
    return sorted((cache_dir() / "search").glob("*.json"))


# -- tokeniser and passages ----------------------------------------------------------------


def test_tokenize() -> None:
    assert tokenize("The Cat's 2 MATS, and the dog!") == ["cat", "s", "2", "mats", "dog"]
    assert tokenize("") == []
    assert tokenize("the of and") == []


def test_split_passages_merges_short_paragraphs_and_cuts_long_ones() -> None:
    words = [f"w{i}" for i in range(500)]
    assert [len(p.split()) for p in split_passages(" ".join(words))] == [200, 200, 100]
    short = "\n\n".join(" ".join(["x"] * 30) for _ in range(5))
    assert [len(p.split()) for p in split_passages(short)] == [150]  # 120 + a 30-word tail
    two = "\n\n".join(" ".join(["y"] * 150) for _ in range(2))
    assert [len(p.split()) for p in split_passages(two)] == [150, 150]
    assert split_passages("") == []
    assert split_passages("one\n  two\tthree") == ["one two three"]
    assert all(len(p.split()) <= MAX_WORDS for p in split_passages(" ".join(words * 3)))


# -- BM25 ----------------------------------------------------------------------------------


def test_hand_computed_bm25_score(corpus: Path) -> None:
    index = SearchIndex.build(corpus)
    # Tokens without stopwords: d1 = cat sat mat (3), d2 = dogs chase cat (3),
    # d3 = birds sing (2); N = 3, avgdl = 8/3.
    # "mat": df = 1, idf = ln((3 - 1 + 0.5) / (1 + 0.5) + 1) = ln(8/3).
    # d1: tf = 1, dl = 3: 1.5 * (1 - 0.75 + 0.75 * 3 / (8/3)) = 1.640625, so
    # score = ln(8/3) * 1 * 2.5 / (1 + 1.640625) = 0.928596…
    [(score, passage)] = index.search("mat")
    assert passage == Passage("d1", "cats", "The cat sat on the mat")
    assert score == pytest.approx(math.log(8 / 3) * 2.5 / 2.640625)
    assert score == pytest.approx(0.928596, abs=1e-6)
    assert index.idf("cat") == pytest.approx(math.log(1.6))  # df = 2


def test_ranking(corpus: Path) -> None:
    index = SearchIndex.build(corpus)
    # "cat" is in d1 and d2, equally long: equal scores, collection order.
    hits = index.search("cat")
    assert [p.id for _, p in hits] == ["d1", "d2"]
    assert hits[0][0] == pytest.approx(hits[1][0])
    assert [p.id for _, p in index.search("dogs cat")] == ["d2", "d1"]
    assert [p.id for _, p in index.search("cat mat")] == ["d1", "d2"]
    assert [p.id for _, p in index.search("sing, birds!")][0] == "d3"
    assert index.search("cat cat cat") == index.search("cat")  # distinct terms count once
    assert index.search("zebra") == []
    assert index.search("the of") == []
    assert len(index.search("cat", k=1)) == 1
    assert index.search("cat", k=0) == []
    assert len(index.search("cat dogs birds mat", k=10)) == 3


def test_folder_collection(folder: Path) -> None:
    index = SearchIndex.build(folder)
    assert sorted(p.title for p in index.passages) == ["a.txt", "b.md", "sub/c.txt"]
    [(_, top), (_, second)] = index.search("capital of Australia", k=2)
    assert top.id == "a.txt#0" and top.text == "Canberra is the capital of Australia."
    assert {second.title} <= {"b.md", "sub/c.txt"}
    assert index.search("France")[0][1].text == "# France Paris is the capital of France."


def test_single_text_file(folder: Path) -> None:
    index = SearchIndex.build(folder / "sub" / "c.txt")
    assert [p.id for p in index.passages] == ["c.txt#0"]


def test_jsonl_without_id_or_title(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "alpha"}, {"text": "beta"}])
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")  # blank lines are fine
    index = SearchIndex.build(path)
    assert index.passages == [Passage("1", "", "alpha"), Passage("2", "", "beta")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\nnot json\n', "bad JSON on line 2"),
        ('{"title": "no text"}\n', "no 'text' on line 1"),
        ("[1, 2]\n", "no 'text' on line 1"),
    ],
)
def test_bad_jsonl(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ToolError, match=message):
        SearchIndex.build(path)


def test_unsupported_and_missing_collections(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_text("x", encoding="utf-8")
    with pytest.raises(ToolError, match="unsupported collection"):
        SearchIndex.build(tmp_path / "x.pdf")
    with pytest.raises(ToolError, match="search index: no such collection"):
        SearchIndex.build(tmp_path / "nope")


# -- the cache -----------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Collections actually read (not loaded from the cache), in order."""
    seen: list[Path] = []
    real = search.read_passages

    def counting(root: Path, files: list[Path]) -> list[Passage]:
        seen.append(root)
        return real(root, files)

    monkeypatch.setattr(search, "read_passages", counting)
    return seen


def test_cache_is_written_once_and_reused(folder: Path, reads: list[Path]) -> None:
    first = SearchIndex.build(folder)
    [entry] = cache_files()
    stamp = entry.stat().st_mtime_ns
    second = SearchIndex.build(folder)
    assert reads == [folder.resolve()]
    assert cache_files() == [entry] and entry.stat().st_mtime_ns == stamp
    assert second.passages == first.passages
    assert second.search("capital Australia") == first.search("capital Australia")


def test_changed_collection_is_reindexed(folder: Path, reads: list[Path]) -> None:
    SearchIndex.build(folder)
    (folder / "a.txt").write_text("Canberra is the capital city of Australia.\n")  # size
    assert "city" in {t for p in SearchIndex.build(folder).passages for t in tokenize(p.text)}
    stat = (folder / "b.md").stat()
    os.utime(folder / "b.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # mtime only
    SearchIndex.build(folder)
    (folder / "new.txt").write_text("A new file.\n")  # an added file
    SearchIndex.build(folder)
    assert len(reads) == 4
    assert len(cache_files()) == 4


def test_damaged_cache_is_rebuilt(corpus: Path, reads: list[Path]) -> None:
    SearchIndex.build(corpus)
    [entry] = cache_files()
    entry.write_text("{not json", encoding="utf-8")
    assert SearchIndex.build(corpus).search("mat")[0][1].id == "d1"
    assert len(reads) == 2
    json.loads(entry.read_text(encoding="utf-8"))  # rewritten whole


# -- the tool ------------------------------------------------------------------------------


async def test_tool_answers_with_the_top_passage(corpus: Path) -> None:
    tool = make_search(corpus)
    assert tool.name == "Search"
    assert await tool("where did the cat sit on a mat?") == "The cat sat on the mat"
    assert await tool("zebra") == "no results"
    assert await tool("") == "no results"


async def test_tool_k_and_truncation(corpus: Path) -> None:
    assert await make_search(corpus, k=2)("cat") == "The cat sat on the mat … Dogs chase the cat"
    short = await make_search(corpus, k=2, max_chars=20)("cat")
    assert short == "The cat sat on the…" and len(short) <= 20


async def test_missing_collection_is_an_error_at_call_time(tmp_path: Path) -> None:
    tool = make_search(tmp_path / "missing")  # constructing does not raise
    with pytest.raises(ToolError, match="^search index: no such collection: "):
        await tool("anything")
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "a.txt").write_text("found it now\n")
    assert await tool("found") == "found it now"  # nothing about the miss was remembered


async def test_tool_keeps_the_index_and_sees_changes(folder: Path, reads: list[Path]) -> None:
    tool = make_search(folder)
    assert "Canberra" in await tool("capital Australia")
    assert "Canberra" in await tool("capital Australia")
    assert len(reads) == 1
    (folder / "a.txt").write_text("Canberra, the capital, has a lake.\n")
    assert await tool("lake") == "Canberra, the capital, has a lake."
    assert len(reads) == 2


def test_truncate() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("one two three four", 12) == "one two…"
    assert truncate("abcdefghijklmnop", 8) == "abcdefg…"  # no space: cut mid-word
    assert truncate("abc", 1) == "…"
    assert truncate("abc", 0) == ""


# -- fuzzing -------------------------------------------------------------------------------

_FUZZ_INDEX = SearchIndex.from_passages(
    [Passage(d["id"], d.get("title", ""), d["text"]) for d in DOCS] + [Passage("e", "", "")]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(-2, 5))
def test_any_query_is_safe(query: str, k: int) -> None:
    tokens = tokenize(query)
    assert all(t and t == t.lower() and t not in STOPWORDS for t in tokens)
    hits = _FUZZ_INDEX.search(query, k)
    assert len(hits) <= max(k, 0)
    scores = [score for score, _ in hits]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
