"""The Search tool: BM25 ranking over a local collection of documents.

What it does: reads a collection once, splits it into passages, and ranks passages for a
query with Okapi BM25 (k1=1.5, b=0.75, idf = ln((N - df + 0.5) / (df + 0.5) + 1)). A
collection is a folder of .txt/.md files (searched recursively; each file split into
passages of about 100-200 words along paragraph breaks), a single .txt/.md file, or a
.jsonl file with one record per line: `text` (required), `title` and `id` (optional);
each record is one passage. The index is cached as JSON under
`cache_dir()/search/<key>.json`, where the key hashes the collection's resolved path and
every file's name, modification time and size, so a changed collection is re-indexed
and an unchanged one is loaded, not rebuilt.

The tool keeps each collection it serves in memory (`Collection`, the last 8 used in
this process) and between calls brings it up to date from what changed: a folder is
listed again only when its modification time changed, a few files are re-checked per
call for edits in place, and only new or changed files are read (`minsky.tools.corpus`).

A collection stays inside its folder, even while its files are swapped under it: files
are opened without following symbolic links, from their folder's descriptor, and what
was opened is checked (a regular file, inside the folder) — a link is never followed.
A collection larger than `max_bytes` (8 MB by default) is refused rather than read, so
one call cannot hold a member (or memory) for minutes.

What it does not do: no stemming, synonyms, phrase queries or embeddings; words are
lowercased `\\w+` runs less a small English stopword list. The cache is never pruned;
old entries for changed collections stay until the cache directory is cleared.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minsky.paths import cache_dir
from minsky.tools.base import Tool, ToolError
from minsky.tools.corpus import Corpus, Seen, read_inside

K1 = 1.5
B = 0.75
MIN_WORDS = 100  # passages from text files: at least this many words where possible…
MAX_WORDS = 200  # …and at most this many
FORMAT = "minsky-bm25-1"  # part of the cache key: bump it when indexing changes
TEXT_SUFFIXES = (".txt", ".md")
MAX_BYTES = 8 * 1024 * 1024  # a collection larger than this is refused, not read
MAX_READ = 64 * 1024 * 1024  # one file read, at most (it may grow after it was sized)
KEPT = 8  # collections the tool keeps in memory in one process

STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does", "for",
    "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "me", "my", "of", "on", "or", "our", "she", "so", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "us", "was",
    "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with",
    "you", "your",
))  # fmt: skip
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens of `text`, stopwords removed."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True)
class Passage:
    """One searchable unit: a chunk of a file or one JSONL record."""

    id: str  # "notes/a.md#2" for files, the record's `id` (or line number) for JSONL
    title: str  # the file's path in the collection, or the record's `title`
    text: str


def split_passages(text: str) -> list[str]:
    """Split a document into passages of MIN_WORDS-MAX_WORDS words along paragraphs.

    Short paragraphs are merged until a passage has MIN_WORDS words; paragraphs longer
    than MAX_WORDS are cut into MAX_WORDS-word pieces. Whitespace is collapsed.
    """
    pieces: list[list[str]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        words = paragraph.split()
        pieces.extend(words[i : i + MAX_WORDS] for i in range(0, len(words), MAX_WORDS))
    passages: list[list[str]] = []
    current: list[str] = []
    for words in pieces:
        if current and len(current) + len(words) > MAX_WORDS:
            passages.append(current)
            current = []
        current = current + words
        if len(current) >= MIN_WORDS:
            passages.append(current)
            current = []
    if current:  # a short tail joins the previous passage when that stays in bounds
        if passages and len(passages[-1]) + len(current) <= MAX_WORDS:
            passages[-1] = passages[-1] + current
        else:
            passages.append(current)
    return [" ".join(words) for words in passages]


def _missing(path: Path) -> ToolError:
    return ToolError(f"search index: no such collection: {path}")


def _unsupported(root: Path) -> ToolError:
    return ToolError(f"search index: unsupported collection {root} "
                     "(expected a folder of .txt/.md files, a .txt/.md file or a .jsonl file)")


def collection_key(root: Path, files: dict[str, Seen], max_bytes: int = MAX_BYTES) -> str:
    """A hash that changes whenever a file is added, removed, touched or resized; a
    collection of more than `max_bytes` is a ToolError."""
    digest = hashlib.sha256(f"{FORMAT}\0{root}\0".encode())
    total = 0
    for rel in _ordered(files):
        seen = files[rel]
        total += seen.size
        if total > max_bytes:
            raise ToolError(f"search index: collection {root} is over its size limit of "
                            f"{max_bytes:,} bytes (option max_bytes)")
        digest.update(f"{rel}\0{seen.mtime_ns}\0{seen.size}\n".encode())
    return digest.hexdigest()


def _ordered(files: dict[str, Seen] | set[str]) -> list[str]:
    return sorted(files, key=lambda rel: rel.split("/"))


def _read(root: Path, path: Path) -> str | None:
    """A file of the collection as text; None where it is not a regular file inside it."""
    rel = path.relative_to(root) if path != root else Path()
    data = read_inside(root, rel, MAX_READ)
    return None if data is None else data.decode("utf-8", errors="replace")


def _jsonl(path: Path, text: str) -> list[Passage]:
    passages = []
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ToolError(f"search index: bad JSON on line {number} of {path}") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ToolError(f"search index: no 'text' on line {number} of {path}")
        text = " ".join(record["text"].split())
        pid = str(record.get("id", number))
        passages.append(Passage(pid, str(record.get("title", "")), text))
    return passages


def read_passages(root: Path, files: list[Path]) -> list[Passage]:
    """Every passage of `files` (of the collection at `root`), in file order; a file
    that is no longer a regular file inside the collection is left out."""
    passages: list[Passage] = []
    for path in files:
        text = _read(root, path)
        if text is None:
            continue
        if path.suffix.lower() == ".jsonl":
            passages.extend(_jsonl(path, text))
            continue
        rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
        passages.extend(
            Passage(f"{rel}#{i}", rel, chunk) for i, chunk in enumerate(split_passages(text))
        )
    return passages


class Collection:
    """The index of one collection, kept up to date: only what changed is read again."""

    def __init__(self, root: Path, max_bytes: int = MAX_BYTES) -> None:
        self.root, self.max_bytes = root, max_bytes
        self.folder = root.is_dir()
        if not self.folder and root.suffix.lower() not in (*TEXT_SUFFIXES, ".jsonl"):
            raise _unsupported(root)
        self._corpus = Corpus(root, TEXT_SUFFIXES) if self.folder else None
        self._files: dict[str, Seen] = {}
        self._by_file: dict[str, list[Passage]] = {}
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()  # the tool runs in worker threads

    def index(self) -> SearchIndex:
        """The index as the collection is now."""
        with self._lock:
            try:
                return self._update()
            except BaseException:
                self._forget()  # the next call starts over rather than trust a half update
                raise

    def _forget(self) -> None:
        self._corpus = Corpus(self.root, TEXT_SUFFIXES) if self.folder else None
        self._files, self._by_file, self._index = {}, {}, None

    def _update(self) -> SearchIndex:
        changed = self._refresh()
        if self._index is not None and not changed:
            return self._index
        key = collection_key(self.root, self._files, self.max_bytes)
        cache = cache_dir() / "search" / f"{key}.json"
        if self._index is None and cache.is_file():
            try:
                self._index = SearchIndex.from_json(json.loads(cache.read_text("utf-8")))
                self._by_file = self._split(self._index.passages)
                return self._index
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache entry is rebuilt, not an error
            changed = set(self._files)
        try:
            found = read_passages(self.root, [self._path(rel) for rel in _ordered(changed)
                                              if rel in self._files])
        except OSError as error:
            raise ToolError(f"search index: cannot read {self.root}: "
                            f"{error.strerror}") from None
        for rel in changed:
            self._by_file.pop(rel, None)
        self._by_file.update(self._split(found))
        self._index = SearchIndex.from_passages(
            [p for rel in _ordered(self._files) for p in self._by_file.get(rel, [])])
        _store(cache, self._index)
        return self._index

    def _refresh(self) -> set[str]:
        if self._corpus is None:
            try:
                st = os.stat(self.root, follow_symlinks=False)
            except OSError:
                raise _missing(self.root) from None
            before, self._files = self._files, {self.root.name: Seen(
                st.st_ino, st.st_mtime_ns, st.st_size)}
            return set(self._files) if before != self._files else set()
        try:
            changed = self._corpus.refresh()
        except OSError as error:
            raise ToolError(f"search index: cannot read {self.root}: {error.strerror}") \
                from None
        self._files = self._corpus.files
        return changed

    def _path(self, rel: str) -> Path:
        return self.root / rel if self.folder else self.root

    def _split(self, passages: list[Passage]) -> dict[str, list[Passage]]:
        """Passages by the file they came from (a folder's passages carry it as title)."""
        if not self.folder:
            return {self.root.name: passages}
        by_file: dict[str, list[Passage]] = {}
        for p in passages:
            by_file.setdefault(p.title, []).append(p)
        return by_file


def _store(cache: Path, index: SearchIndex) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    tmp = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(index.to_json()), encoding="utf-8")
    os.replace(tmp, cache)


@dataclass
class SearchIndex:
    """An inverted index over passages, scored with BM25."""

    passages: list[Passage]
    lengths: list[int]  # tokens per passage
    postings: dict[str, list[tuple[int, int]]]  # term -> [(passage index, term frequency)]
    avgdl: float = field(init=False)

    def __post_init__(self) -> None:
        self.avgdl = sum(self.lengths) / len(self.lengths) if self.lengths else 0.0

    @classmethod
    def from_passages(cls, passages: list[Passage]) -> SearchIndex:
        lengths: list[int] = []
        postings: dict[str, list[tuple[int, int]]] = {}
        for index, passage in enumerate(passages):
            counts = Counter(tokenize(passage.text))
            lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                postings.setdefault(term, []).append((index, tf))
        return cls(passages, lengths, postings)

    @classmethod
    def build(cls, path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> SearchIndex:
        """The index of the collection at `path`, from the cache when it is unchanged."""
        root = Path(path).expanduser().resolve()
        if not root.exists():
            raise _missing(root)
        return Collection(root, max_bytes).index()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "passages": [[p.id, p.title, p.text] for p in self.passages],
            "lengths": self.lengths,
            "postings": self.postings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchIndex:
        if data["format"] != FORMAT:
            raise ValueError("other format")
        return cls(
            [Passage(*map(str, p)) for p in data["passages"]],
            [int(n) for n in data["lengths"]],
            {t: [(int(i), int(tf)) for i, tf in ps] for t, ps in data["postings"].items()},
        )

    def idf(self, term: str) -> float:
        n, df = len(self.passages), len(self.postings.get(term, ()))
        return math.log((n - df + 0.5) / (df + 0.5) + 1)

    def search(self, query: str, k: int = 3) -> list[tuple[float, Passage]]:
        """The k best passages for `query` as (score, passage), best first.

        Each distinct query term counts once. Passages that share no term with the query
        are left out; equal scores keep collection order.
        """
        scores: dict[int, float] = {}
        for term in dict.fromkeys(tokenize(query)):
            idf = self.idf(term)
            for index, tf in self.postings.get(term, ()):
                norm = K1 * (1 - B + B * self.lengths[index] / self.avgdl)
                scores[index] = scores.get(index, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(k, 0)]
        return [(score, self.passages[index]) for index, score in best]


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to at most max_chars characters, at a word boundary where possible."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return "…"[:max_chars]
    cut = text[: max_chars - 1]
    if " " in cut[max_chars // 2 :]:  # prefer a word boundary unless it loses too much
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


_KEPT: OrderedDict[tuple[Path, bool, int], Collection] = OrderedDict()
_KEPT_LOCK = threading.Lock()


def _collection(root: Path, max_bytes: int) -> Collection:
    """The collection at `root` kept in this process (the KEPT last used)."""
    key = (root, root.is_dir(), max_bytes)
    with _KEPT_LOCK:
        found = _KEPT.pop(key, None) or Collection(root, max_bytes)
        _KEPT[key] = found
        while len(_KEPT) > KEPT:
            _KEPT.popitem(last=False)
        return found


def make_search(path: str | os.PathLike[str], k: int = 1, max_chars: int = 400,
                max_bytes: int = MAX_BYTES) -> Tool:
    """A "Search" tool over the collection at `path`, answering with the top k passages.

    Nothing is read until the first call, so a missing collection is a ToolError in the
    call's result rather than an error here. The index is kept in memory between calls
    (and between tools of the same collection) and brought up to date as it changes.
    """

    def run(query: str) -> str:
        root = Path(path).expanduser().resolve()
        if not root.exists():
            raise _missing(root)
        hits = _collection(root, max_bytes).index().search(query, k)
        if not hits:
            return "no results"
        return truncate(" … ".join(passage.text for _, passage in hits), max_chars)

    return Tool(
        "Search",
        "find passages in local documents",
        run,
        examples=(("capital of Australia", "Canberra is the capital city of Australia …"),),
    )
