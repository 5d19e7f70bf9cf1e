"""Where spans go: a tracer provider that sends them over OTLP/HTTP, in batches.

The exporter reads the standard variables itself (`OTEL_EXPORTER_OTLP_ENDPOINT`, its
`_TRACES_` form, headers, timeouts); with none set it sends to http://localhost:4318, the
collector's default. The service is `OTEL_SERVICE_NAME`, else "minsky". Spans still
queued are sent when the process exits (the SDK's provider shuts down at exit).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import context, propagate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from minsky.otel.observer import TraceObserver


def _version() -> str:
    try:
        return version("minsky")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0"


def otlp_provider() -> TracerProvider:
    """A tracer provider that batches spans to the configured OTLP/HTTP endpoint."""
    # subtle: attributes given here win over OTEL_RESOURCE_ATTRIBUTES, so the service name
    # is read from its variable by hand; the SDK's own default would be "unknown_service"
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "minsky",
                                "service.version": _version()})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def otlp_observer() -> TraceObserver:
    """The trace observer of this process, on a provider of its own (not installed as
    OpenTelemetry's global one, which can be set only once and may be the host's)."""
    return TraceObserver(otlp_provider().get_tracer("minsky", _version()))


def continued(headers: Mapping[str, str]) -> contextvars.Context:
    """A copy of the current context whose OpenTelemetry context carries the trace of
    `headers` (`traceparent`, `tracestate`, by the configured propagators: W3C's)."""
    ctx = contextvars.copy_context()
    ctx.run(context.attach, propagate.extract(headers))
    return ctx
