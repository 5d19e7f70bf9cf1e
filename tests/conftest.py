"""Shared fixtures: a hermetic minsky home for every test, and society builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from minsky.runlog import RunLog
from minsky.society import Society, from_dict

ROLE = "You are a careful problem solver."

# Property tests check what happens, not how fast: hypothesis's default 200 ms deadline
# per example fails them spuriously on a loaded 2-core CI machine.
settings.register_profile("minsky", deadline=None)
settings.load_profile("minsky")


@pytest.fixture(autouse=True)
def no_real_models(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests cannot reach a real model: loading one, or calling a model server off
    this machine, is refused unless the test is marked `real`."""
    if request.node.get_closest_marker("real") is None:
        monkeypatch.setenv("MINSKY_NO_REAL_MODELS", "1")
    else:
        monkeypatch.delenv("MINSKY_NO_REAL_MODELS", raising=False)


@pytest.fixture(autouse=True)
def minsky_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MINSKY_HOME and MINSKY_CACHE at fresh temporary directories.

    MINSKY_MODEL is removed too, so the default model of a test is always "qwen0.5b"
    unless the test sets it.
    """
    home = tmp_path / "minsky-home"
    cache = tmp_path / "minsky-cache"
    monkeypatch.setenv("MINSKY_HOME", str(home))
    monkeypatch.setenv("MINSKY_CACHE", str(cache))
    monkeypatch.delenv("MINSKY_MODEL", raising=False)
    return home


def society_dict(
    organisation: str = "vote",
    agents: list[dict[str, Any]] | None = None,
    *,
    model: str | None = "fake:a",
    budget: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    name: str = "test",
    **extra: Any,
) -> dict[str, Any]:
    """A society file as a parsed dict; by default 3 copies of one solver on "fake:a"."""
    if agents is None:
        agents = [{"name": "solver", "role": ROLE, "count": 3}]
    data: dict[str, Any] = {"name": name, "organisation": organisation, "agents": agents}
    if model is not None:
        data["model"] = model
    if budget is not None:
        data["budget"] = budget
    if params is not None:
        data["params"] = params
    data.update(extra)
    return data


@pytest.fixture
def make_society() -> Callable[..., Society]:
    """Build a validated Society: `make_society(dict)` or `make_society(**society_dict_kwargs)`.

    `override=` is the model override given to `from_dict` (like `minsky ask --model`).
    """

    def make(
        data: dict[str, Any] | None = None,
        *,
        override: str | None = None,
        source: str = "test.toml",
        **kwargs: Any,
    ) -> Society:
        if data is None:
            data = society_dict(**kwargs)
        elif kwargs:
            raise TypeError("pass either a dict or society_dict keyword arguments")
        return from_dict(data, source, override)

    return make


@pytest.fixture
def log(tmp_path: Path) -> Iterator[RunLog]:
    """A run log in the test's temporary directory."""
    run_log = RunLog(tmp_path / "runs.db")
    yield run_log
    run_log.close()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the long commands' progress bar draw as on a terminal, into a buffer (under
    click's runner stderr is not a terminal, so the bar is hidden); returns the buffer."""
    import io

    from rich.console import Console

    from minsky.cli import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "_console",
                        lambda: Console(file=screen, force_terminal=True, width=120))
    return screen
