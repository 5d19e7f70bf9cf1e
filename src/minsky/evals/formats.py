"""Benchmark formats: public benchmark files as uniform `Case`s, and scoring against them.

Each known format (GSM8K, MAWPS, ARC, MMLU, CommonsenseQA, OpenBookQA) has a `LoaderType`
that recognises it from its first record (the built-in plugin registers `LOADERS`);
`minsky.evals.benchmarks.load_benchmark` picks the loader for a file or folder, or reads
any other JSONL through a field mapping (`mapped`). Options of a multiple-choice
question are always relabelled A, B, C... by position, so every model sees one labelling
scheme and `extract_answer(kind="choice")` works unchanged. Data is read from local paths
only: nothing is ever downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from minsky.answers import answers_match, normalise_number, normalise_text
from minsky.errors import MinskyError
from minsky.inputs.safetext import valid_tree
from minsky.plugin_api import Case, LoaderType

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAPPING_KEYS = ("question", "answer", "choices", "id")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class _Row:
    """A record with where it came from, so every complaint names file, line and field."""

    path: Path
    line: int
    data: dict[str, Any]

    def fail(self, field: str, expected: str) -> NoReturn:
        raise MinskyError(f"{self.path}:{self.line}: field {field!r}: expected {expected}")

    def get(self, field: str, expected: str) -> Any:
        # The exact key first, so a key that itself contains a dot still works; otherwise
        # "question.stem" walks into nested objects.
        if field in self.data:
            return self.data[field]
        value: Any = self.data
        for part in field.split("."):
            if not isinstance(value, dict) or part not in value:
                self.fail(field, f"{expected}, but it is missing")
            value = value[part]
        return value

    def text(self, field: str) -> str:
        value = self.get(field, "a non-empty string")
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"a non-empty string, got {_show(value)}")
        return value.strip()

    def ident(self, field: str = "id") -> str:
        value = self.data.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
        return f"{self.path.stem}:{self.line}"


def files_of(path: Path) -> list[Path]:
    if path.is_dir():
        # name order, so a folder always loads the same way (and ids/samples are stable)
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise MinskyError(f"benchmark folder {path} holds no .jsonl files")
        return files
    if not path.is_file():
        raise MinskyError(f"benchmark {path} does not exist")
    return [path]


def rows_of(path: Path) -> Generator[_Row, None, None]:
    try:
        with path.open(encoding="utf-8") as f:
            # Iterating the file splits at \n and \r only. str.splitlines (and so
            # records.read_records) also splits at U+0085 and U+2028, which occur inside
            # real records (MMLU validation line 1024).
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    data = valid_tree(json.loads(line))
                except json.JSONDecodeError as err:
                    raise MinskyError(f"{path}:{n}: not valid JSON ({err.msg})") from None
                except RecursionError:
                    raise MinskyError(f"{path}:{n}: JSON nested too deeply") from None
                if not isinstance(data, dict):
                    raise MinskyError(f"{path}:{n}: expected a JSON object, got {_show(data)}")
                yield _Row(path, n, data)
    except UnicodeDecodeError:
        raise MinskyError(f"{path}: not UTF-8 text") from None


def loader_of(convert: Callable[[_Row], Case]) -> Callable[[Path], list[Case]]:
    def load(path: Path) -> list[Case]:
        cases = [convert(row) for file in files_of(Path(path)) for row in rows_of(file)]
        if not cases:
            raise MinskyError(f"benchmark {path} holds no records")
        return cases

    return load


def _strings(row: _Row, field: str, value: Any) -> list[str]:
    ok = isinstance(value, list) and 2 <= len(value) <= len(LETTERS)
    if not ok or not all(isinstance(v, str) and v.strip() for v in value):
        row.fail(field, f"a list of 2 to {len(LETTERS)} non-empty strings, got {_show(value)}")
    return [v.strip() for v in value]


def _choice_case(ident: str, stem: str, options: list[str], index: int) -> Case:
    letters = LETTERS[: len(options)]
    lines = [stem] + [f"{letter}) {text}" for letter, text in zip(letters, options, strict=True)]
    return Case(ident, "\n".join(lines), letters[index], "choice", letters)


def _labelled(row: _Row, stem: str, fields: tuple[str, str], texts: Any, labels: Any) -> Case:
    """A question whose options carry their own labels; `answerKey` names one label."""
    options = _strings(row, fields[0], texts)
    if not isinstance(labels, list) or [type(x) for x in labels] != [str] * len(options):
        row.fail(fields[1], f"one string label per option, got {_show(labels)}")
    key = row.get("answerKey", "an option label")
    if key not in labels:
        row.fail("answerKey", f"one of the labels {_show(labels)}, got {_show(key)}")
    # Relabel by position: ARC mixes "A".."D" with "1".."4" for the same kind of question.
    return _choice_case(row.ident(), stem, options, labels.index(key))


def _number(row: _Row, field: str, value: Any) -> str:
    gold = None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        gold = normalise_number(str(value))
    if gold is None:
        row.fail(field, f"a number, got {_show(value)}")
    return gold


def _gsm8k(row: _Row) -> Case:
    question, solution = row.text("question"), row.text("answer")
    if "####" not in solution:
        row.fail("answer", "a solution ending in '#### NUMBER'")
    # The gold is what follows the last '####'; commas are thousands separators.
    gold = _number(row, "answer", solution.rsplit("####", 1)[1].strip().replace(",", ""))
    return Case(row.ident(), question, gold, "number")


def _mawps(row: _Row) -> Case:
    gold = _number(row, "target", row.get("target", "a number"))
    return Case(row.ident(), row.text("input"), gold, "number")


def _arc(row: _Row) -> Case:
    choices = row.get("choices", "an object with text and label lists")
    if not isinstance(choices, dict):
        row.fail("choices", f"an object with text and label lists, got {_show(choices)}")
    stem = row.text("question_stem" if "question_stem" in row.data else "question")
    return _labelled(
        row, stem, ("choices.text", "choices.label"), choices.get("text"), choices.get("label"))


def _mmlu(row: _Row) -> Case:
    options = _strings(row, "choices", row.get("choices", "a list of option texts"))
    answer = row.get("answer", "an option index")
    if type(answer) is not int or not 0 <= answer < len(options):
        row.fail("answer", f"an option index 0 to {len(options) - 1}, got {_show(answer)}")
    return _choice_case(row.ident(), row.text("question"), options, answer)


def _commonsenseqa(row: _Row) -> Case:
    items = row.get("question.choices", "a list of {label, text} objects")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        row.fail("question.choices", f"a list of {{label, text}} objects, got {_show(items)}")
    texts, labels = [i.get("text") for i in items], [i.get("label") for i in items]
    return _labelled(row, row.text("question.stem"), ("question.choices",) * 2, texts, labels)


def _answer_index(row: _Row, field: str, answer: Any, options: list[str]) -> int:
    """Which option a generic answer names: an index, a letter, or the option's text."""
    n = len(options)
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < n:
        return answer
    if isinstance(answer, str):
        a = answer.strip()
        # A one-character answer is a letter; then the option text, exact or normalised;
        # last an index written as a string (after the text, so option "2" means "2").
        if len(a) == 1 and a.upper() in LETTERS[:n]:
            return LETTERS.index(a.upper())
        if a in options:
            return options.index(a)
        norm = [normalise_text(o) for o in options]
        if (t := normalise_text(a)) is not None and t in norm:
            return norm.index(t)
        if a.isascii() and a.isdigit() and int(a) < n:
            return int(a)
    row.fail(field, f"a letter A-{LETTERS[n - 1]}, an index 0-{n - 1} or an option's text, "
             f"got {_show(answer)}")


def mapped(mapping: dict[str, str]) -> Callable[[_Row], Case]:
    unknown = sorted(set(mapping) - set(MAPPING_KEYS))
    if unknown:
        raise MinskyError(f"unknown field mapping key(s) {', '.join(unknown)}; "
                          f"expected {', '.join(MAPPING_KEYS)}")
    missing = [k for k in ("question", "answer") if not mapping.get(k)]
    if missing:
        raise MinskyError(f"the field mapping needs {' and '.join(missing)} "
                          "(e.g. question=q,answer=a[,choices=opts])")

    def convert(row: _Row) -> Case:
        ident = row.ident(mapping.get("id", "id"))
        question, field = row.text(mapping["question"]), mapping["answer"]
        answer = row.get(field, "an answer")
        if mapping.get("choices"):
            options = _strings(row, mapping["choices"], row.get(mapping["choices"], "options"))
            return _choice_case(ident, question, options,
                                _answer_index(row, field, answer, options))
        if isinstance(answer, str) and "####" in answer:
            answer = answer.rsplit("####", 1)[1]  # a GSM8K-style solution: gold follows '####'
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            return Case(ident, question, _number(row, field, answer), "number")
        gold = normalise_text(answer) if isinstance(answer, str) else None
        if gold is None:
            row.fail(field, f"a non-empty string or a number, got {_show(answer)}")
        number = normalise_number(answer)
        return Case(ident, question, number or gold, "number" if number else "text")

    return convert


def _has(r: dict[str, Any], **types: type) -> bool:
    return all(isinstance(r.get(k), t) for k, t in types.items())


# Detection looks at field names and types only; the six formats share no such signature.
LOADERS: tuple[LoaderType, ...] = (
    LoaderType("gsm8k", loader_of(_gsm8k), lambda r: _has(r, question=str, answer=str)
               and "####" in r["answer"], "GSM8K: question, answer ending in '#### NUMBER'"),
    LoaderType("mawps", loader_of(_mawps), lambda r: _has(r, input=str) and "target" in r,
               "MAWPS (PAL format): input, numeric target"),
    LoaderType("arc", loader_of(_arc), lambda r: _has(r, question=str, choices=dict)
               and "answerKey" in r, "ARC: question, choices {text, label}, answerKey"),
    LoaderType("mmlu", loader_of(_mmlu), lambda r: _has(r, question=str, choices=list)
               and "answer" in r, "MMLU: question, choices (list), answer index"),
    LoaderType("commonsenseqa", loader_of(_commonsenseqa), lambda r: _has(r, question=dict)
               and "stem" in r["question"] and "choices" in r["question"],
               "CommonsenseQA: question {stem, choices [{label, text}]}, answerKey"),
    LoaderType("openbookqa", loader_of(_arc), lambda r: _has(r, question_stem=str, choices=dict),
               "OpenBookQA: question_stem, choices {text, label}, answerKey"),
)


def score(case: Case, answer: str | None) -> bool:
    """Whether an extracted answer is right: numbers within tolerance, choice letters
    equal, text equal after `normalise_text`. None is never right."""
    return answers_match(case.answer, answer, case.kind)
