"""The Calendar tool: today's date and simple date arithmetic, from a small fixed grammar.

What it does (case-insensitive; a DATE is `today`, `tomorrow`, `yesterday` or an ISO
date YYYY-MM-DD):

    (empty) | today              -> "Sunday, November 22, 2026"
    DATE                         -> that date in the same long form
    DATE + 30 days [- 1 week …]  -> the date reached; units day, week, month, year
    days between DATE and DATE   -> "60" (whole days, never negative)
    weekday DATE                 -> "Thursday"

Months and years move the calendar month and clip to the month's end, so 2024-01-31 plus
one month is 2024-02-29 and 2024-02-29 plus one year is 2025-02-28.

What it does not do: times of day, time zones, natural-language dates ("next Friday",
"March 3rd"), or business days. Anything outside the grammar is a ToolError that lists
the accepted forms, so a model sees how to call it properly.

"Today" comes from an injectable clock: `make_calendar(clock)` builds a tool on any
`() -> date`, and the module's `CALENDAR` reads the module-level `today()`, which tests
may monkeypatch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from minsky.tools.base import Tool, ToolError

FORMS = (
    "accepted forms: 'today', 'YYYY-MM-DD', 'today + 30 days', '2024-01-31 + 1 month', "
    "'days between 2024-01-01 and 2024-03-01', 'weekday 2024-07-04'"
)
MAX_AMOUNT = 1_000_000  # days are the smallest unit; this spans ~2,700 years
MAX_LENGTH = 200

# ASCII digits only ([0-9], not \\d, which admits other scripts' digits).
_DATE = r"(?:today|tomorrow|yesterday|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})"
_STEP = re.compile(r"\s*([+-])\s*([0-9]+)\s*(day|week|month|year)s?\b", re.IGNORECASE)
_ARITHMETIC = re.compile(rf"({_DATE})((?:{_STEP.pattern})*)", re.IGNORECASE)
_BETWEEN = re.compile(
    rf"(?:number\s+of\s+)?days\s+between\s+({_DATE})\s+and\s+({_DATE})", re.IGNORECASE
)
_WEEKDAY = re.compile(rf"(?:weekday|day\s+of\s+(?:the\s+)?week)(?:\s+of)?\s+({_DATE})", re.I)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def today() -> date:
    """The clock behind CALENDAR; tests monkeypatch this."""
    return date.today()


def long_date(day: date) -> str:
    """The long form, e.g. "Sunday, November 22, 2026".

    Built by hand rather than with strftime, whose day and month names follow the locale.
    """
    return f"{_WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}, {day.year}"


def _parse_date(text: str, now: date) -> date:
    word = text.lower()
    if word == "today":
        return now
    if word in ("tomorrow", "yesterday"):
        return _shift_days(now, 1 if word == "tomorrow" else -1)
    year, month, day = (int(part) for part in text.split("-"))
    try:
        return date(year, month, day)
    except ValueError:
        raise ToolError(f"invalid date {text!r}") from None


def _shift_days(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise ToolError("date out of range") from None


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - timedelta(days=1)).day


def _add_months(day: date, months: int) -> date:
    """Move by calendar months, clipping the day to the target month's length."""
    year, index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise ToolError("date out of range")
    return date(year, index + 1, min(day.day, _days_in_month(year, index + 1)))


def _step(day: date, sign: str, amount: int, unit: str) -> date:
    if amount > MAX_AMOUNT:
        raise ToolError("date out of range")
    n = amount if sign == "+" else -amount
    unit = unit.lower()
    if unit == "day":
        return _shift_days(day, n)
    if unit == "week":
        return _shift_days(day, 7 * n)
    return _add_months(day, n if unit == "month" else 12 * n)


def answer(text: str, now: date) -> str:
    """The Calendar tool's reply to `text`, with `now` as today's date."""
    if len(text) > MAX_LENGTH:
        raise ToolError(f"input too long (over {MAX_LENGTH} characters)")
    query = " ".join(text.split()).rstrip("?.").strip()
    if not query:
        return long_date(now)
    if match := _BETWEEN.fullmatch(query):
        first, second = (_parse_date(match.group(i), now) for i in (1, 2))
        return str(abs((second - first).days))
    if match := _WEEKDAY.fullmatch(query):
        return _WEEKDAYS[_parse_date(match.group(1), now).weekday()]
    if match := _ARITHMETIC.fullmatch(query):
        day = _parse_date(match.group(1), now)
        for step in _STEP.finditer(match.group(2)):
            day = _step(day, step.group(1), int(step.group(2)), step.group(3))
        return long_date(day)
    raise ToolError(f"cannot read {text.strip()[:60]!r}; {FORMS}")


def make_calendar(clock: Callable[[], date]) -> Tool:
    """A Calendar tool whose "today" is `clock()`, read at each call."""
    return Tool(
        "Calendar",
        "today's date, date arithmetic (today + 30 days), days between, weekday",
        lambda text: answer(text, clock()),
        examples=(
            ("today + 30 days", "Tuesday, December 22, 2026"),
            ("days between 2024-01-01 and 2024-03-01", "60"),
        ),
    )


# A lambda, not `today` itself, so that monkeypatching the module's `today` takes effect.
CALENDAR = make_calendar(lambda: today())
