"""The one interceptor every call passes: authentication, call context and
error translation.

It wraps each method handler rather than only inspecting metadata, so that it
can (a) bind the principal in a contextvar that the handler's task sees, and
(b) translate domain exceptions raised anywhere in a handler into one rich
status, logged once with a request id the client also receives.
"""

from __future__ import annotations

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
from server import context, status

log = structlog.get_logger(__name__)

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

    def __init__(self, verifier: TokenVerifier, *, leeway_s: float = 0.0) -> None:
        self._verifier = verifier
        self._leeway_s = leeway_s
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
        return request_id

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

            async def unary_response(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                request_id = await interceptor._enter(ctx, method)
                try:
                    ctx.set_trailing_metadata((("x-request-id", request_id),))
                    return await inner(request, ctx)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await interceptor._abort(ctx, exc, request_id)

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
            try:
                ctx.set_trailing_metadata((("x-request-id", request_id),))
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
