"""The Calendar tool on a fixed clock: today, date arithmetic, differences, weekdays."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minsky.tools import calendar
from minsky.tools.base import ToolError
from minsky.tools.calendar import CALENDAR, answer, long_date, make_calendar

NOW = date(2026, 11, 22)  # a Sunday

CASES = [
    ("", "Sunday, November 22, 2026"),
    ("today", "Sunday, November 22, 2026"),
    ("  Today? ", "Sunday, November 22, 2026"),
    ("tomorrow", "Monday, November 23, 2026"),
    ("yesterday", "Saturday, November 21, 2026"),
    ("2024-07-04", "Thursday, July 4, 2024"),
    ("today + 30 days", "Tuesday, December 22, 2026"),
    ("today+1day", "Monday, November 23, 2026"),
    ("today - 1 week", "Sunday, November 15, 2026"),
    ("TODAY + 2 Weeks", "Sunday, December 6, 2026"),
    ("2024-01-31 + 1 month", "Thursday, February 29, 2024"),
    ("2023-01-31 + 1 month", "Tuesday, February 28, 2023"),
    ("2024-03-31 - 1 month", "Thursday, February 29, 2024"),
    ("2024-01-31 + 13 months", "Friday, February 28, 2025"),
    ("2024-12-15 + 1 month", "Wednesday, January 15, 2025"),
    ("2024-01-15 - 1 month", "Friday, December 15, 2023"),
    ("2024-02-29 + 1 year", "Friday, February 28, 2025"),
    ("2024-02-29 + 4 years", "Tuesday, February 29, 2028"),
    ("2024-03-01 - 2 weeks", "Friday, February 16, 2024"),
    ("2024-03-01 + 1 year - 1 day", "Friday, February 28, 2025"),
    ("2024-01-01 + 0 days", "Monday, January 1, 2024"),
    ("days between 2024-01-01 and 2024-03-01", "60"),
    ("Days between 2024-03-01 and 2024-01-01", "60"),
    ("number of days between 2023-01-01 and 2024-01-01", "365"),
    ("days between today and 2026-12-25", "33"),
    ("days between 2024-05-05 and 2024-05-05", "0"),
    ("weekday 2024-07-04", "Thursday"),
    ("weekday today", "Sunday"),
    ("day of the week 2000-01-01", "Saturday"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_answers(text: str, expected: str) -> None:
    assert answer(text, NOW) == expected


ERRORS = [
    ("next friday", "cannot read 'next friday'"),
    ("today + 3 fortnights", "cannot read"),
    ("2024/01/01", "cannot read"),
    ("days between 2024-01-01", "cannot read"),
    ("2024-02-30", "invalid date '2024-02-30'"),
    ("weekday 2023-13-01", "invalid date '2023-13-01'"),
    ("9999-12-31 + 1 day", "date out of range"),
    ("9999-12-15 + 1 month", "date out of range"),
    ("0001-01-01 - 1 year", "date out of range"),
    ("today + 99999999999999999999 days", "date out of range"),
    ("today" + " + 1 day" * 40, "input too long"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ToolError, match="^" + message):
        answer(text, NOW)


def test_unreadable_input_lists_the_accepted_forms() -> None:
    with pytest.raises(ToolError) as info:
        answer("what day is it", NOW)
    assert "days between 2024-01-01 and 2024-03-01" in str(info.value)
    assert "weekday 2024-07-04" in str(info.value)


def test_long_date_names_every_month_and_weekday() -> None:
    assert long_date(date(2024, 12, 31)) == "Tuesday, December 31, 2024"
    assert long_date(date(2024, 1, 1)) == "Monday, January 1, 2024"


async def test_make_calendar_reads_the_clock_at_each_call() -> None:
    days = iter([date(2024, 1, 1), date(2024, 1, 2)])
    tool = make_calendar(lambda: next(days))
    assert tool.name == "Calendar"
    assert await tool("") == "Monday, January 1, 2024"
    assert await tool("") == "Tuesday, January 2, 2024"


async def test_module_clock_can_be_monkeypatched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar, "today", lambda: NOW)
    assert await CALENDAR("today + 30 days") == "Tuesday, December 22, 2026"
    for text, result in CALENDAR.examples:
        assert await CALENDAR(text) == result


def test_real_clock_gives_a_long_date() -> None:
    assert answer("", calendar.today()) == long_date(date.today())


_WORDS = st.sampled_from(
    ["today", "2024-01-31", "9999-12-31", "+", "-", " ", "1", "12", "99999", "day", "weeks",
     "month", "years", "days between", "and", "weekday", "of", "?", "x"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_WORDS, max_size=25).map(" ".join)))
def test_any_text_is_a_result_or_a_tool_error(text: str) -> None:
    try:
        result = answer(text, NOW)
    except ToolError:
        return
    assert isinstance(result, str) and result
