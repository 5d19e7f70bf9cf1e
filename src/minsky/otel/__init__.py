"""OpenTelemetry traces of runs (the `otel` extra): whether tracing is on, and starting it.

Tracing is on once a command has called `start`: with `--otel`, or when the extra is
installed and `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
set. From then on every `Runner` made in this process has the trace observer
(`minsky.otel.observer`) among its observers, and spans leave in batches over OTLP/HTTP
(`minsky.otel.export`). Off, nothing here imports opentelemetry and runners have no
observer more, so a run costs what it did without the extra.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from importlib.util import find_spec
from typing import TYPE_CHECKING

from minsky.errors import MinskyError

if TYPE_CHECKING:
    from minsky.run_events import Observer

__all__ = ["INSTALL", "configured", "incoming", "installed", "observers", "start"]

INSTALL = "--otel needs OpenTelemetry: pip install 'minsky[otel]'"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# the process's trace observer, once started: tracing, like OpenTelemetry's own tracer
# provider, is a property of the process, so runners made deep inside a command (the
# server's per-request ones among them) pick it up without being handed it
_observers: list[Observer] = []


def configured() -> bool:
    """Whether the environment names an OTLP endpoint."""
    return any(os.environ.get(name) for name in ENDPOINTS)


def installed() -> bool:
    """Whether the `otel` extra (the SDK and the OTLP/HTTP exporter) is installed."""
    try:
        return (find_spec("opentelemetry.sdk") is not None
                and find_spec("opentelemetry.exporter.otlp.proto.http") is not None)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def start(flag: bool = False) -> bool:
    """Turn tracing on for this process if `flag` (`--otel`) or the environment asks for
    it; whether it is on. `--otel` without the extra is an error; an endpoint set for
    other programs, with no extra here, changes nothing."""
    if _observers:
        return True
    if not (flag or configured()):
        return False
    if not installed():
        if flag:
            raise MinskyError(INSTALL)
        return False
    from minsky.otel.export import otlp_observer

    _observers.append(otlp_observer())
    return True


def observers() -> list[Observer]:
    """The observers tracing adds to a new runner: none while it is off."""
    return list(_observers)


def incoming(headers: Mapping[str, str]) -> contextvars.Context | None:
    """The context to run a served request in: with tracing on, a copy of the current one
    that continues the request's W3C `traceparent`; otherwise None (the caller's own)."""
    if not _observers:
        return None
    from minsky.otel.export import continued

    return continued(headers)
