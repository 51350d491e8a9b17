"""The one interceptor every call passes: authentication, call context, error
translation, metrics, tracing and draining at shutdown.

It wraps each method handler rather than only inspecting metadata, so that it
can (a) bind the principal in a contextvar that the handler's task sees, and
(b) translate domain exceptions raised anywhere in a handler into one rich
status, logged once with a request id the client also receives. The same
wrapper times the call, counts its status code and makes it a span.

Health and reflection pass untouched (no token, no metrics, no span).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import dramatiq.errors
import grpc
import redis.exceptions
import structlog
from opentelemetry import propagate, trace

from reelscribe import errors, tracing
from reelscribe.auth import Principal, TokenVerifier
from reelscribe.metrics import RPC_DURATION, RPC_HANDLED, RPC_STARTED
from reelscribe.ratelimit import RateLimiter
from server import context, status
from server.hub import ShuttingDown

log = structlog.get_logger(__name__)
_tracer = tracing.tracer(__name__)

#: Calls that create work: refused (not waved through) when Redis is down.
FAIL_CLOSED_METHODS = frozenset({"UploadMedia", "CreateJob"})

#: Methods callable without a token: health checks and reflection.
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

#: How a client picks up where it was when the server shuts down under it.
RESUME_HINTS = {
    "WatchJob": "reconnect with after_seq set to the last seq you received",
    "WatchJobs": "reconnect with after_cursor set to the last cursor you received",
    "UploadMedia": (
        "resume the upload: GetUpload(upload_id) gives stored_bytes, then send the rest "
        "with offset_bytes=stored_bytes (an upload without an upload_id starts over)"
    ),
    "ReadClip": "read on with offset_bytes set to the bytes you received",
}

#: Failures of a backing service (Postgres, Redis) rather than of the call:
#: UNAVAILABLE with RetryInfo, never INTERNAL.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    # Postgres connections lost, refused or rejected (08xxx, e.g.
    # ConnectionDoesNotExistError), a server starting or stopping (57P0x),
    # no connection slot left (53300), and the client side of a closed pool.
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # The pool's own bookkeeping tripping over a connection that died under it
    # ("release() called on a free connection holder", "cannot switch to state").
    asyncpg.exceptions.InternalClientError,
    # Redis unreachable, timing out, loading its data after a restart
    # (BusyLoadingError is a ConnectionError) or read-only after a failover.
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    dramatiq.errors.BrokerConnectionError,
    ConnectionError,
    TimeoutError,
)

#: Modules whose OS errors mean "the database or broker is unreachable" (a
#: missing Unix socket is a FileNotFoundError raised inside asyncpg).
_CLIENT_MODULES = frozenset({"asyncpg", "redis", "dramatiq"})

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


def _raised_in_client(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.partition(".")[0] in _CLIENT_MODULES:
            return True
        tb = tb.tb_next
    return False


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says Postgres or Redis is unreachable."""
    current: BaseException | None = exc
    for _ in range(5):
        if current is None:
            return False
        if isinstance(current, _UNAVAILABLE_ERRORS):
            return True
        if isinstance(current, OSError) and _raised_in_client(current):
            return True
        # Raised while handling the outage (`__context__`) counts as well.
        current = current.__cause__ or current.__context__
    return False


def shutting_down(method_name: str) -> ShuttingDown:
    """The error that ends a call of `method_name` when the server stops."""
    hint = RESUME_HINTS.get(method_name, "retry the call")
    return ShuttingDown(f"the server is shutting down; {hint} (any server will do)")


def _code_set_on(ctx: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a handler set itself (by aborting directly); UNKNOWN if unclear."""
    code = ctx.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _metadata_value(ctx: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in ctx.invocation_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value.decode() if isinstance(value, bytes) else value
    return None


class _Call:
    """Bookkeeping of one call: labels, start time and final status."""

    __slots__ = ("code", "kind", "method", "name", "service", "started")

    def __init__(self, method: str, kind: str) -> None:
        self.method = method
        self.service, _, self.name = method.lstrip("/").rpartition("/")
        self.kind = kind
        self.started = time.perf_counter()
        #: Set once the outcome is known; None means the call was cancelled.
        self.code: grpc.StatusCode | None = None
        RPC_STARTED.labels(self.service, self.name, kind).inc()


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates callers, maps exceptions to statuses, measures and traces calls."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        leeway_s: float = 0.0,
        limiter: RateLimiter | None = None,
        max_streams: int = 2000,
        default_timeout_s: float = 60.0,
    ) -> None:
        self._verifier = verifier
        self._leeway_s = leeway_s
        self._limiter = limiter
        self._max_streams = max_streams
        self._default_timeout_s = default_timeout_s
        #: Streams open right now in this process.
        self.open_streams = 0
        #: The same, by method name (for the active streams gauge).
        self.streams_by_method: Counter[str] = Counter()
        #: Calls that passed authentication (a probe for tests and metrics).
        self.authenticated_calls = 0
        #: True once the server is shutting down: new calls and streams are refused.
        self.draining = False
        self._drained: asyncio.Future[None] | None = None

    def begin_shutdown(self) -> None:
        """Refuse new calls and end open streams (they raise `ShuttingDown`)."""
        self.draining = True
        drained = self._drained_future()
        if not drained.done():
            drained.set_result(None)

    def _drained_future(self) -> asyncio.Future[None]:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        return self._drained

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(PUBLIC_SERVICES):
            return handler
        return self._wrap(handler, method)

    async def _enter(self, ctx: grpc.aio.ServicerContext, call: _Call) -> str:
        request_id = _metadata_value(ctx, "x-request-id") or uuid.uuid4().hex
        request_id = request_id[:64]
        context.bind(None, request_id)
        # Each call starts from a clean logging context (nothing from the server's task).
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, method=call.method)
        trace.get_current_span().set_attribute("reelscribe.request_id", request_id)
        if self.draining:
            await self._abort(ctx, shutting_down(call.name), request_id, call)
        try:
            principal: Principal = await self._verifier.verify(
                _metadata_value(ctx, "authorization")
            )
        except errors.Unauthenticated as exc:
            await self._abort(ctx, exc, request_id, call)
        context.bind(principal, request_id)
        structlog.contextvars.bind_contextvars(user_id=principal.subject)
        self.authenticated_calls += 1
        try:
            await self._check_rate(principal.subject, call.name)
        except errors.ReelscribeError as exc:
            await self._abort(ctx, exc, request_id, call)
        return request_id

    async def _check_rate(self, owner: str, method: str) -> None:
        if self._limiter is None:
            return
        try:
            wait_s = await self._limiter.retry_after_s(owner, method)
        except Exception as exc:
            if method in FAIL_CLOSED_METHODS:
                # Without the limiter, work-creating calls could be flooded.
                raise errors.Unavailable("rate limiting is unavailable; retry shortly") from exc
            log.warning("rate limiter unavailable; allowing", error=repr(exc))
            return
        if wait_s > 0:
            raise errors.ResourceExhausted(
                f"rate limit for {method} exceeded; retry in {wait_s:.2f} s",
                reason="RATE_LIMITED",
                retry_after_s=wait_s,
            )

    def _open_stream(self, name: str) -> None:
        if self.open_streams >= self._max_streams:
            raise errors.ResourceExhausted(
                "too many open streams on this server; retry shortly",
                reason="TOO_MANY_STREAMS",
                retry_after_s=1.0,
            )
        self.open_streams += 1
        self.streams_by_method[name] += 1

    def _close_stream(self, name: str) -> None:
        self.open_streams -= 1
        self.streams_by_method[name] -= 1

    async def _abort(
        self, ctx: grpc.aio.ServicerContext, exc: BaseException, request_id: str, call: _Call
    ) -> None:
        if isinstance(exc, asyncpg.exceptions.CharacterNotInRepertoireError):
            # Postgres text cannot hold NUL characters, whichever field carried one.
            exc = errors.InvalidArgument(
                "text fields must not contain NUL (\\u0000) characters", reason="NUL_CHARACTER"
            )
        if isinstance(exc, ShuttingDown):
            exc = shutting_down(call.name)
            rich = status.to_status(exc, request_id=request_id)
            log.info("call ended: server shutting down", code=rich.code.name)
        elif isinstance(exc, errors.ReelscribeError):
            rich = status.to_status(exc, request_id=request_id)
            log.info("call failed", code=rich.code.name, reason=exc.reason, error=exc.message)
        elif is_unavailable(exc):
            rich = status.to_status(
                errors.Unavailable("a backing service is unavailable; retry shortly"),
                request_id=request_id,
            )
            log.warning("backing service unavailable", code=rich.code.name, error=repr(exc))
        else:
            rich = status.internal_status(request_id=request_id)
            log.exception("unexpected error", code=rich.code.name, exc_info=exc)
        call.code = rich.code
        await ctx.abort(
            rich.code, rich.details, (*rich.trailing_metadata, ("x-request-id", request_id))
        )

    @contextmanager
    def _observe(self, ctx: grpc.aio.ServicerContext, call: _Call) -> Iterator[None]:
        """The call's span (child of the caller's, if it sent `traceparent`) and metrics."""
        carrier = {}
        for key, value in ctx.invocation_metadata() or ():
            if key in ("traceparent", "tracestate"):
                carrier[key] = value.decode() if isinstance(value, bytes) else value
        parent = propagate.extract(carrier) if carrier else None
        with _tracer.start_as_current_span(
            call.method.lstrip("/"),
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": call.service, "rpc.method": call.name},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except (asyncio.CancelledError, GeneratorExit):
                raise  # the code stays unset: cancelled, or past its deadline
            except BaseException:
                if call.code is None:  # escaped our translation: grpc answers UNKNOWN
                    call.code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                code = call.code
                if code is None:  # cancelled by the client, or its deadline passed
                    remaining = ctx.time_remaining()
                    code = (
                        grpc.StatusCode.DEADLINE_EXCEEDED
                        if remaining is not None and remaining <= 0
                        else grpc.StatusCode.CANCELLED
                    )
                labels = (call.service, call.name, call.kind, code.name)
                RPC_HANDLED.labels(*labels).inc()
                RPC_DURATION.labels(*labels).observe(time.perf_counter() - call.started)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in _SERVER_ERROR_CODES:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))

    async def _drainable(self, requests: AsyncIterator[Any], name: str) -> AsyncIterator[Any]:
        """`requests`, raising `ShuttingDown` instead of waiting once the server stops.

        Used for request streams (uploads): the handler stops at its next read,
        and its own cleanup runs (the stored bytes are recorded for the resume).
        Once the client has sent everything, the call completes like a unary one.
        """
        drained = self._drained_future()
        iterator = aiter(requests)
        while True:
            if drained.done():
                raise shutting_down(name)
            received: asyncio.Future[Any] = asyncio.ensure_future(anext(iterator))
            try:
                await asyncio.wait((received, drained), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                received.cancel()  # we were cancelled (the client left): stop reading too
                raise
            if not received.done():
                received.cancel()
                raise shutting_down(name)
            try:
                item = received.result()
            except StopAsyncIteration:
                return
            yield item

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        interceptor = self

        if handler.unary_unary or handler.stream_unary:
            # grpc's stubs type behaviours as sync callables; on grpc.aio they are async.
            inner: Any = handler.unary_unary or handler.stream_unary
            streaming_request = handler.stream_unary is not None
            kind = "client_stream" if streaming_request else "unary"

            async def unary_response(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                call = _Call(method, kind)
                with interceptor._observe(ctx, call):
                    request_id = await interceptor._enter(ctx, call)
                    opened = False
                    try:
                        ctx.set_trailing_metadata((("x-request-id", request_id),))
                        if streaming_request:
                            interceptor._open_stream(call.name)
                            opened = True
                            reply = await inner(interceptor._drainable(request, call.name), ctx)
                        else:
                            reply = await interceptor._unary(inner, request, ctx)
                        call.code = grpc.StatusCode.OK
                        return reply
                    except grpc.aio.AbortError:
                        call.code = call.code or _code_set_on(ctx)
                        raise
                    except Exception as exc:
                        await interceptor._abort(ctx, exc, request_id, call)
                    finally:
                        if opened:
                            interceptor._close_stream(call.name)

            factory = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
            return factory(
                unary_response,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream: Any = handler.unary_stream or handler.stream_stream
        stream_kind = "server_stream" if handler.unary_stream else "bidi_stream"

        async def stream_response(
            request: Any, ctx: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            call = _Call(method, stream_kind)
            with interceptor._observe(ctx, call):
                request_id = await interceptor._enter(ctx, call)
                expires_at = context.current_principal().expires_at + interceptor._leeway_s
                opened = False
                try:
                    ctx.set_trailing_metadata((("x-request-id", request_id),))
                    interceptor._open_stream(call.name)
                    opened = True
                    async for item in inner_stream(request, ctx):
                        # A stream may not outlive its token. Streams carry at least
                        # a heartbeat every few seconds, so this check runs often.
                        if time.time() > expires_at:
                            raise errors.Unauthenticated(
                                "token expired during the stream; reconnect with a fresh token",
                                reason="TOKEN_EXPIRED",
                            )
                        # Watches waiting for events are woken by the hub; this
                        # catches streams that were busy (replaying) instead.
                        if interceptor.draining:
                            raise shutting_down(call.name)
                        yield item
                    call.code = grpc.StatusCode.OK
                except grpc.aio.AbortError:
                    call.code = call.code or _code_set_on(ctx)
                    raise
                except Exception as exc:
                    await interceptor._abort(ctx, exc, request_id, call)
                finally:
                    if opened:
                        interceptor._close_stream(call.name)

        factory = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return factory(
            stream_response,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _unary(self, inner: Any, request: Any, ctx: grpc.aio.ServicerContext) -> Any:
        """Run a unary handler; calls without a deadline get the default one."""
        timeout_s = None if ctx.time_remaining() is not None else self._default_timeout_s
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return await inner(request, ctx)
        except TimeoutError as exc:
            # Only our own deadline is DEADLINE_EXCEEDED; a TimeoutError from a
            # client library (a database connect) is a backing-service failure.
            if scope.expired():
                raise errors.DeadlineExceeded(f"the call took longer than {timeout_s} s") from exc
            raise
