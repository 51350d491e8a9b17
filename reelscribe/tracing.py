"""OpenTelemetry tracing: one trace from the RPC through the queue to every stage.

Code everywhere uses only the OpenTelemetry API (`tracer()`); without an
exporter configured the API's no-op tracer answers, at negligible cost, and
nothing is recorded. `configure` installs the SDK when an OTLP endpoint
(`otel_exporter_otlp_endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`)
or a JSON-lines file (`otel_traces_file`) is set. The standard `OTEL_*`
variables (service name, sampler, headers, ...) apply as usual.

Trace context crosses the queue inside Dramatiq message options (`trace`,
W3C `traceparent`): `inject_into_options` when a message is built,
`extract_from_options` when a worker takes it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

if TYPE_CHECKING:
    from reelscribe.config import Settings

#: Key of the trace context in Dramatiq message options.
OPTIONS_KEY = "trace"

_provider: TracerProvider | None = None
_lock = threading.Lock()


def tracer(name: str) -> trace.Tracer:
    """A tracer; a no-op one until `configure` installs an exporter."""
    return trace.get_tracer(name)


def otlp_endpoint(settings: Settings) -> str:
    """The configured OTLP endpoint, from settings or the standard variables."""
    return (
        settings.otel_exporter_otlp_endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    )


def configure(settings: Settings, service_name: str) -> bool:
    """Install the SDK with the configured exporters; False (and no-op) without any.

    Call once per process, after any fork (exporters own threads and files).
    """
    global _provider
    endpoint = otlp_endpoint(settings)
    if not endpoint and not settings.otel_traces_file:
        return False
    with _lock:
        if _provider is not None:
            return True
        # OTEL_SERVICE_NAME, when set, names the service instead.
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        provider = TracerProvider(resource=Resource.create(attributes))
        if endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        if settings.otel_traces_file:
            # Written synchronously: worker processes exit without running atexit hooks.
            provider.add_span_processor(
                SimpleSpanProcessor(JsonLinesSpanExporter(settings.otel_traces_file))
            )
        trace.set_tracer_provider(provider)
        _provider = provider
    return True


def shutdown() -> None:
    """Flush and stop the exporters (no-op when tracing is off)."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def inject_into_options(options: dict[str, Any]) -> dict[str, Any]:
    """Add the current trace context to Dramatiq message options (if there is one)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:
        options[OPTIONS_KEY] = carrier
    return options


def extract_from_options(options: Mapping[str, Any]) -> otel_context.Context | None:
    """The trace context a message carries, or None."""
    carrier = options.get(OPTIONS_KEY)
    if not isinstance(carrier, Mapping) or not carrier:
        return None
    return propagate.extract({str(k): str(v) for k, v in carrier.items()})


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to a file as one JSON line.

    One `write` per span on an O_APPEND descriptor, so several processes can
    share the file without interleaving lines.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            line = json.dumps(json.loads(span.to_json(indent=None)), separators=(",", ":"))
            os.write(self._fd, (line + "\n").encode())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)
