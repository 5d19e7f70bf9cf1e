"""`Strict` and `error_line` (issue 30): every model a user writes refuses unknown keys
through the one base class, and every refusal is one line made one way."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError

import minsky
from minsky.strict import Strict, error_line


class Rules(Strict):
    rent: int = Field(0, ge=0)
    name: str


def refused(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Rules.model_validate(data)
    return caught.value


def test_a_line_names_where_the_field_and_the_value() -> None:
    err = refused({"name": "x", "rent": -5})
    assert error_line(err, "rules.toml") == (
        "rules.toml: field 'rent': Input should be greater than or equal to 0 (got -5)")


def test_every_error_in_turn_and_no_value_where_the_message_says_it_all() -> None:
    err = refused({"rnet": 1})
    assert error_line(err, "r.toml") == ("r.toml: field 'name': Field required; "
                                         "field 'rnet': Extra inputs are not permitted")


def test_within_and_name_place_the_field() -> None:
    err = refused({"name": "x", "rent": -1})
    assert error_line(err, "s.toml", "params").startswith("s.toml: field 'params.rent': ")
    assert error_line(err, name=lambda path: f"option --{path}").startswith(
        "option --rent: Input should be")


def test_a_long_value_is_cut_to_keep_the_line_short() -> None:
    line = error_line(refused({"name": "x", "rent": "nine" * 100}))
    assert len(line) < 200 and line.endswith("…)") and "\n" not in line


def test_strict_is_the_only_place_that_forbids_extra_keys() -> None:
    root = Path(minsky.__file__).parent
    forbidding = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                        if 'extra="forbid"' in p.read_text(encoding="utf-8"))
    assert forbidding == ["strict.py"]


def test_one_loopback_check() -> None:
    from minsky.serve.connections import is_loopback

    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "evil.example", "", "::"]))
    root = Path(minsky.__file__).parent
    defining = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                      if ".is_loopback" in p.read_text(encoding="utf-8"))
    assert defining == ["serve/connections.py"]
