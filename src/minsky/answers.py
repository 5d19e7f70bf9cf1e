"""Pull a final answer out of a small model's free-form reply, and count the votes.

Members of a society are small language models (0.1B-8B) that rarely follow a format:
they wrap answers in markdown, LaTeX ``\\boxed{}``, GSM8K ``####`` markers, units and
currency signs, or bury them at the end of a chain of thought. `extract_answer` turns
such a reply into a canonical string (or None), `answers_match` compares two of them,
`tally_votes` runs the plurality vote, and `answer_grammar` gives a GBNF grammar that
constrains a reply to the bare answer when the backend supports grammars.

Pure string processing: no eval/exec, nothing is ever executed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Literal

AnswerKind = Literal["number", "choice", "text"]
_KINDS = ("number", "choice", "text")

# Lookbehinds keep us from reading digits out of identifiers ("x2"), versions ("v1.5")
# or dates ("1/20/2024"); the sign must touch the digits so "42 - 9" is not "-9".
_NUM_RE = re.compile(
    r"(?<![\w/])(?<![0-9]\.)"
    r"(?P<sign>-)?[$€£]?(?P<sign2>-)?"
    r"(?P<body>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
    r"(?:/(?P<den>[0-9]+(?:\.[0-9]+)?))?"
    r"(?![0-9/])"
)
# Stricter than _NUM_RE: the whole string must be one number (plus $ / % decoration).
_NORM_RE = re.compile(
    r"(?P<sign>[-+])?[$€£]?(?P<sign2>[-+])?"
    r"(?P<body>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE](?P<exp>[-+]?[0-9]{1,3}))?"
    r"(?:/(?P<den>[0-9]+(?:\.[0-9]+)?))?"
    r"%?\.?"
)
# A copula is required after plain "answer" so "To answer this, 3 apples..." is prose.
_PHRASE_RE = re.compile(
    r"(?:\bfinal\s+answer\s*(?:is|was|=|:)?"
    r"|\b(?:answer|option|choice)\s*"
    r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:))"
    r"\s*:?[ \t]*",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"[.!?;](?=\s|$)")
_NON_SPACE_RE = re.compile(r"\S")
_SEGMENT_CHARS = 300
_FRAC_RE = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_TEXT_CMD_RE = re.compile(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}")
_ARTICLE_RE = re.compile(r"^(?:the|an|a)\s+")
_END_JUNK = " \t.,;:!?\"'`\u201c\u201d\u2018\u2019*_"
# Beyond this many places a non-terminating fraction (1/3) is rounded; answers_match
# compares with a tolerance anyway, so the exact tail never matters.
_MAX_PLACES = 15


def _fraction_to_str(value: Fraction) -> str:
    """Shortest exact decimal for terminating fractions, else rounded to 15 places."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    places = max(twos, fives) if rest == 1 else _MAX_PLACES
    scaled = round(value * 10**places)
    if scaled == 0:
        return "0"  # also turns "-0" and "-0.00" into "0"
    digits = str(scaled).rjust(places + 1, "0")
    whole, frac = (digits[:-places], digits[-places:]) if places else (digits, "")
    frac = frac.rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def normalise_number(s: str) -> str | None:
    """Canonical form of one written number, or None if `s` is not exactly one number.

    Accepts a sign, a currency sign, thousands commas, a trailing ``%`` or ``.``, an
    exponent and simple fractions ("3/4" -> "0.75"). Drops trailing zeros ("42.50" ->
    "42.5", "42.0" -> "42") and the sign of zero. Exact for terminating decimals.
    """
    m = _NORM_RE.fullmatch(s.strip().replace("\u2212", "-"))
    if m is None:
        return None
    try:
        value = Fraction(m["body"].replace(",", "").rstrip(".") or "0")
        if m["exp"]:
            value *= Fraction(10) ** int(m["exp"])
        if m["den"]:
            value /= Fraction(m["den"])
        if "-" in (m["sign"], m["sign2"]):
            value = -value
        return _fraction_to_str(value)
    except (ZeroDivisionError, ValueError):
        # ValueError: Python refuses int<->str conversions past ~4300 digits, which is
        # no answer anyone is voting on.
        return None


def normalise_text(s: str) -> str | None:
    """Lower-case, collapse spaces, drop markdown/quotes/end punctuation and articles."""
    s = " ".join(s.replace("**", "").replace("__", "").lower().split())
    return _ARTICLE_RE.sub("", s.strip(_END_JUNK)).strip(_END_JUNK) or None


def _clean(text: str) -> str:
    # Bold markers and LaTeX decorations hide numbers and letters from the patterns;
    # "{,}" and "\," are LaTeX thousands separators, "\$" an escaped dollar sign.
    text = text.replace("**", "").replace("\u2212", "-").replace("{,}", ",")
    text = text.replace("\\,", "").replace("\\$", "$").replace("\\%", "%")
    text = _TEXT_CMD_RE.sub(r"\1", text)
    return _FRAC_RE.sub(lambda m: f"{m[1].strip()}/{m[2].strip()}", text)


def _last_boxed(text: str) -> str | None:
    # Brace counting instead of a regex so nested groups (\boxed{\frac{3}{4}}) survive.
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    begin, depth = text.index("{", start) + 1, 1
    for i in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i]
    return text[begin:]  # truncated generation: take what is there


def _segment_after(text: str, pos: int) -> str:
    """First non-empty line after `pos`, up to the end of its first sentence."""
    # Bounded look-ahead: an answer follows its phrase closely, and scanning the whole
    # remainder for every phrase would be quadratic on long, repetitive replies.
    found = _NON_SPACE_RE.search(text, pos)
    if found is None:
        return ""
    line = text[found.start() : found.start() + _SEGMENT_CHARS].split("\n", 1)[0]
    return _SENTENCE_END_RE.split(line, maxsplit=1)[0]


def _numbers(text: str) -> list[str]:
    found = []
    for m in _NUM_RE.finditer(text):
        sign = "-" if (m["sign"] or m["sign2"]) else ""
        den = f"/{m['den']}" if m["den"] else ""
        n = normalise_number(sign + m["body"] + den)
        if n is not None:  # a zero denominator is not a number
            found.append(n)
    return found


def _number_in(segment: str) -> str | None:
    # "The answer is 3 * 14 = 42": the result is the number after the last "=".
    if "=" in segment:
        after = _numbers(segment.rsplit("=", 1)[1])
        if after:
            return after[0]
    found = _numbers(segment)
    return found[0] if found else None


def _extract_number(text: str) -> str | None:
    boxed = _last_boxed(text)
    if boxed is not None and (n := _number_in(boxed)) is not None:
        return n
    # GSM8K's "####" outranks the phrases; later phrases outrank earlier ones.
    starts = [m.end() for m in reversed(list(_PHRASE_RE.finditer(text)))]
    if "####" in text:
        starts.insert(0, text.rfind("####") + 4)
    for pos in starts:
        if (n := _number_in(_segment_after(text, pos))) is not None:
            return n
    found = _numbers(text)
    return found[-1] if found else None


def _extract_choice(text: str, choices: str) -> str | None:
    letters = "".join(dict.fromkeys(c.upper() for c in choices if c.strip()))
    if not letters:
        return None
    up = "[" + "".join(re.escape(c) for c in letters) + "]"
    low = "[" + "".join(re.escape(c.lower()) for c in letters) + "]"
    text = text.replace("`", "").replace('"', "")
    after = re.compile(
        rf"\s*(?:(?:option|choice|letter)\s+)?(?P<o>[(\[])?\s*(?P<l>{up}|{low})\s*"
        rf"(?P<c>[)\]])?(?![A-Za-z0-9'])(?P<end>[.!]?\s*$)?",
        re.IGNORECASE,
    )
    for m in reversed(list(_PHRASE_RE.finditer(text))):
        a = after.match(text, m.end())
        if a is None or a["l"].upper() not in letters:
            continue
        # A lower-case letter right after "answer is" is usually the article ("a cat"),
        # so it only counts when marked as a label or ending the reply.
        if a["l"].isupper() or a["o"] or a["c"] or a["end"] is not None:
            return a["l"].upper()
    body = text.strip()
    alone = re.fullmatch(rf"[(\[]?\s*({up})\s*[)\].:]?", body)
    if alone:
        return alone[1]
    start = re.match(
        rf"(?P<o>[(\[])?\s*(?P<l>{up})(?:(?P<c>[)\]])|(?P<p>:|\.(?![A-Za-z0-9])))?"
        rf"(?![A-Za-z0-9'+#.-])",
        body,
    )
    end = re.search(
        rf"(?<![A-Za-z0-9'])(?P<o>[(\[])? ?(?P<l>{up}) ?(?P<c>[)\]])?(?P<p>[.!])?$",
        body,
    )

    def strength(m: re.Match[str] | None) -> int:
        if m is None:
            return 0
        s = 3 if (m["o"] or m["c"]) else 2 if m["p"] else 1
        # A bare "A" at either end is far more often the article than an answer.
        return 0 if (s == 1 and m["l"] == "A") else s

    best = max((start, end), key=strength)  # max keeps the start on ties
    if best is not None and strength(best) > 0:
        return best["l"]
    labelled = re.findall(rf"\(({up})\)", body)
    return labelled[-1] if labelled else None


def _extract_text(text: str) -> str | None:
    text = _clean(text)
    boxed = _last_boxed(text)
    if boxed is not None and (t := normalise_text(boxed)) is not None:
        return t
    for m in reversed(list(_PHRASE_RE.finditer(text))):
        t = normalise_text(_segment_after(text, m.end()))
        if t is not None:
            return t
    lines = [line for line in text.splitlines() if line.strip()]
    return normalise_text(lines[-1]) if lines else None


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {_KINDS}")


def extract_answer(text: str, kind: AnswerKind = "number", choices: str = "ABCDE") -> str | None:
    """Normalised answer found in a model reply, or None when there is none.

    number: priority ``\\boxed{}`` (last) > ``####`` > "answer is / answer: / final
    answer" (last) > last number in the text; returns `normalise_number` form.
    choice: upper-case letter from `choices`; explicit phrases first, then a lone
    letter label at the start or end of the reply. text: the phrase's sentence or the
    last non-empty line, in `normalise_text` form.
    """
    _check_kind(kind)
    if kind == "number":
        return _extract_number(_clean(text))
    if kind == "choice":
        return _extract_choice(text.replace("**", ""), choices)
    return _extract_text(text)


def canonical(answer: str, kind: AnswerKind) -> str | None:
    """An answer in the form votes are counted in (None: it says nothing)."""
    if kind == "number":
        return normalise_number(answer) or (answer.strip() or None)
    if kind == "choice":
        return answer.strip().upper() or None
    return normalise_text(answer)


def answers_match(
    a: str | None, b: str | None, kind: AnswerKind = "number", tol: float = 1e-6
) -> bool:
    """Whether two answers agree: numbers within `tol` (relative or absolute), others
    equal after normalisation. None, or anything empty, never matches."""
    _check_kind(kind)
    if a is None or b is None:
        return False
    ca, cb = canonical(a, kind), canonical(b, kind)
    if ca is None or cb is None:
        return False
    if kind == "number":
        na, nb = normalise_number(ca), normalise_number(cb)
        if na is None or nb is None:
            return ca == cb
        # Exact rational arithmetic: no float overflow or rounding on huge numbers.
        x, y, t = Fraction(na), Fraction(nb), Fraction(max(tol, 0.0))
        return abs(x - y) <= max(t * max(abs(x), abs(y)), t)
    return ca == cb


def answer_grammar(kind: AnswerKind, choices: str = "ABCDE") -> str:
    """GBNF grammar (llama.cpp format) that allows only the bare answer as the reply."""
    _check_kind(kind)
    if kind == "number":
        return 'root ::= "-"? [0-9]{1,15} ("." [0-9]{1,10})?\n'
    if kind == "choice":
        letters = list(dict.fromkeys(c.upper() for c in choices if c.strip()))
        if not letters:
            raise ValueError("choices must contain at least one letter")
        quoted = ['"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in letters]
        return "root ::= " + " | ".join(quoted) + "\n"
    return "root ::= [^\\r\\n]{1,200}\n"


@dataclass(frozen=True)
class Tally:
    """Outcome of a plurality vote.

    `counts` is in first-seen order; `tied` holds every answer sharing the top count
    (just the winner when there was no tie); `abstained` counts None answers.
    """

    winner: str | None
    counts: dict[str, int] = field(default_factory=dict)
    tied: list[str] = field(default_factory=list)
    abstained: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready copy (the dict and list are copies, not views)."""
        return asdict(self)


def tally_votes(answers: list[str | None], kind: AnswerKind = "number") -> Tally:
    """Plurality vote over the members' answers.

    Answers that `answers_match` an earlier one count for that first-seen
    representative (so "42", "42.0" and 42.0000000001 are one vote bucket). Merging is
    against representatives only, so it is not transitive across chains of near values.
    Ties are broken deterministically: the tied answer given first (lowest index in
    `answers`) wins. None answers, and answers that normalise to nothing, abstain; if
    every answer abstains the winner is None.
    """
    _check_kind(kind)
    counts: dict[str, int] = {}
    abstained = 0
    for raw in answers:
        answer = None if raw is None else canonical(raw, kind)
        if answer is None:
            abstained += 1
            continue
        rep = next((r for r in counts if answers_match(r, answer, kind)), answer)
        counts[rep] = counts.get(rep, 0) + 1
    top = max(counts.values(), default=0)
    # dicts keep insertion order, which is first-seen order, so tied[0] was given first.
    tied = [a for a, n in counts.items() if n == top]
    winner = tied[0] if tied else None
    return Tally(winner=winner, counts=counts, tied=tied, abstained=abstained)
