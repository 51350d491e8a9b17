"""The one interceptor every call passes: authentication, call context and
error translation.

It wraps each method handler rather than only inspecting metadata, so that it
can (a) bind the principal in a contextvar that the handler's task sees, and
(b) translate domain exceptions raised anywhere in a handler into one rich
status, logged once with a request id the client also receives.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import redis.exceptions
import structlog

from reelscribe import errors
from reelscribe.auth import Principal, TokenVerifier
from reelscribe.ratelimit import RateLimiter
from server import context, status

log = structlog.get_logger(__name__)

#: Calls that create work: refused (not waved through) when Redis is down.
FAIL_CLOSED_METHODS = frozenset({"UploadMedia", "CreateJob"})

#: Methods callable without a token: health checks and reflection.
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def _metadata_value(ctx: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in ctx.invocation_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value.decode() if isinstance(value, bytes) else value
    return None


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates callers and maps exceptions to statuses."""

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
        #: Calls that passed authentication (a probe for tests and metrics).
        self.authenticated_calls = 0

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

    async def _enter(self, ctx: grpc.aio.ServicerContext, method: str) -> str:
        request_id = _metadata_value(ctx, "x-request-id") or uuid.uuid4().hex
        request_id = request_id[:64]
        context.bind(None, request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
        try:
            principal: Principal = await self._verifier.verify(
                _metadata_value(ctx, "authorization")
            )
        except errors.Unauthenticated as exc:
            await self._abort(ctx, exc, request_id)
        context.bind(principal, request_id)
        structlog.contextvars.bind_contextvars(user_id=principal.subject)
        self.authenticated_calls += 1
        try:
            await self._check_rate(principal.subject, method.rsplit("/", 1)[-1])
        except errors.ReelscribeError as exc:
            await self._abort(ctx, exc, request_id)
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

    def _open_stream(self) -> None:
        if self.open_streams >= self._max_streams:
            raise errors.ResourceExhausted(
                "too many open streams on this server; retry shortly",
                reason="TOO_MANY_STREAMS",
                retry_after_s=1.0,
            )
        self.open_streams += 1

    async def _abort(
        self, ctx: grpc.aio.ServicerContext, exc: BaseException, request_id: str
    ) -> None:
        if isinstance(exc, errors.ReelscribeError):
            rich = status.to_status(exc, request_id=request_id)
            log.info("call failed", code=rich.code.name, reason=exc.reason, error=exc.message)
        elif isinstance(exc, _UNAVAILABLE_ERRORS):
            rich = status.to_status(
                errors.Unavailable("a backing service is unavailable; retry shortly"),
                request_id=request_id,
            )
            log.warning("backing service unavailable", error=repr(exc))
        else:
            rich = status.internal_status(request_id=request_id)
            log.exception("unexpected error", exc_info=exc)
        await ctx.abort(
            rich.code, rich.details, (*rich.trailing_metadata, ("x-request-id", request_id))
        )

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        interceptor = self

        if handler.unary_unary or handler.stream_unary:
            # grpc's stubs type behaviours as sync callables; on grpc.aio they are async.
            inner: Any = handler.unary_unary or handler.stream_unary

            streaming_request = handler.stream_unary is not None

            async def unary_response(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                request_id = await interceptor._enter(ctx, method)
                opened = False
                try:
                    ctx.set_trailing_metadata((("x-request-id", request_id),))
                    if streaming_request:
                        interceptor._open_stream()
                        opened = True
                        return await inner(request, ctx)
                    # Calls without a deadline get the default one.
                    timeout_s = (
                        None if ctx.time_remaining() is not None else interceptor._default_timeout_s
                    )
                    try:
                        async with asyncio.timeout(timeout_s):
                            return await inner(request, ctx)
                    except TimeoutError as exc:
                        raise errors.DeadlineExceeded(
                            f"the call took longer than {timeout_s} s"
                        ) from exc
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await interceptor._abort(ctx, exc, request_id)
                finally:
                    if opened:
                        interceptor.open_streams -= 1

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

        async def stream_response(
            request: Any, ctx: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            request_id = await interceptor._enter(ctx, method)
            expires_at = context.current_principal().expires_at + interceptor._leeway_s
            opened = False
            try:
                ctx.set_trailing_metadata((("x-request-id", request_id),))
                interceptor._open_stream()
                opened = True
                async for item in inner_stream(request, ctx):
                    # A stream may not outlive its token. Streams carry at least
                    # a heartbeat every few seconds, so this check runs often.
                    if time.time() > expires_at:
                        raise errors.Unauthenticated(
                            "token expired during the stream; reconnect with a fresh token",
                            reason="TOKEN_EXPIRED",
                        )
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await interceptor._abort(ctx, exc, request_id)
            finally:
                if opened:
                    interceptor.open_streams -= 1

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
