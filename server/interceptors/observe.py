"""Every call measured, traced and logged under its request id.

The outermost hook: its span is the parent of everything the call does (a
child of the caller's span when it sent `traceparent`), and it records the
final status code however the call ended, cancelled calls included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import structlog
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from reelscribe import tracing
from reelscribe.metrics import RPC_DURATION, RPC_HANDLED, RPC_STARTED
from server.interceptors.base import Call, Hook

# One instrumentation scope for every call span: the package, not this module.
_tracer = tracing.tracer("server.interceptors")

#: Codes that mark a server span as an error (OpenTelemetry's gRPC conventions).
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _trace_parent(ctx: grpc.aio.ServicerContext) -> Context | None:
    """The caller's trace context, if it sent one."""
    carrier = {}
    for key, value in ctx.invocation_metadata() or ():
        if key in ("traceparent", "tracestate"):
            carrier[key] = value.decode() if isinstance(value, bytes) else value
    return propagate.extract(carrier) if carrier else None


def _final_code(call: Call) -> grpc.StatusCode:
    if call.code is not None:
        return call.code
    # Cancelled by the client, or its deadline passed (grpc cancels the handler).
    remaining = call.ctx.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


class Observe(Hook):
    """Call metrics (started, handled, duration), the call's span and log context."""

    @asynccontextmanager
    async def around_call(self, call: Call) -> AsyncIterator[None]:
        RPC_STARTED.labels(call.service, call.name, call.kind).inc()
        started = time.perf_counter()
        # Each call starts from a clean logging context (nothing from the server's task).
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=call.request_id, method=call.method)
        with _tracer.start_as_current_span(
            call.method.lstrip("/"),
            context=_trace_parent(call.ctx),
            kind=trace.SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": call.service,
                "rpc.method": call.name,
                "reelscribe.request_id": call.request_id,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except asyncio.CancelledError:
                raise  # the code stays unset: cancelled, or past its deadline
            except BaseException:
                if call.code is None:  # escaped the error mapping: grpc answers UNKNOWN
                    call.code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                code = _final_code(call)
                labels = (call.service, call.name, call.kind, code.name)
                RPC_HANDLED.labels(*labels).inc()
                RPC_DURATION.labels(*labels).observe(time.perf_counter() - started)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in _SERVER_ERROR_CODES:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
