"""One wrapper for every kind of gRPC method, running a chain of small hooks.

grpc.aio has four handler kinds: a single or streamed request, answered by a
single or streamed response. `HookChain.wrap` turns any of them into the same
coroutine: streamed responses are written with `context.write` rather than
yielded, so one body serves all four, and each concern of the interceptor is
a `Hook` that overrides only the steps it needs (in the spirit of Dramatiq's
middleware):

    around_call     context managers around the whole call, entered in chain
                    order: the outermost sees everything the inner ones raise
    enter           before the handler, in chain order; raise a domain error
                    to refuse the call
    requests        wraps a streamed request (reads the client's messages)
    around_handler  wraps the handler of a call with a single response
    item            before each streamed response is written
    exit            after the handler, however it ended, in reverse order, for
                    every hook whose `enter` completed

A request that does not parse reaches the chain as a marker
(`server.interceptors.malformed`): it is refused with INVALID_ARGUMENT after
`enter` (so authentication comes first), or, in a stream, when the handler
reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing
from functools import partial
from typing import Any

import grpc

from reelscribe.auth import Principal
from server import context
from server.interceptors import malformed

#: Metric label of each handler kind.
UNARY = "unary"
CLIENT_STREAM = "client_stream"
SERVER_STREAM = "server_stream"
BIDI_STREAM = "bidi_stream"


def metadata_value(ctx: grpc.aio.ServicerContext, key: str) -> str | None:
    """The first value the client sent under `key`, as text."""
    for item in ctx.invocation_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value.decode() if isinstance(value, bytes) else value
    return None


class Call:
    """One call as the hooks see it: what was called, by whom, and how it ended."""

    __slots__ = ("code", "ctx", "kind", "method", "name", "principal", "request_id", "service")

    def __init__(self, method: str, kind: str, ctx: grpc.aio.ServicerContext) -> None:
        #: The full method path, e.g. `/reelscribe.v1.JobService/GetJob`.
        self.method = method
        self.service, _, self.name = method.lstrip("/").rpartition("/")
        #: UNARY, CLIENT_STREAM, SERVER_STREAM or BIDI_STREAM.
        self.kind = kind
        self.ctx = ctx
        #: The client's `x-request-id` (trimmed), or a fresh one; logged with
        #: everything the call does and sent back with its status.
        self.request_id = (metadata_value(ctx, "x-request-id") or uuid.uuid4().hex)[:64]
        #: Set by authentication.
        self.principal: Principal | None = None
        #: Set once the outcome is known; None means the call was cancelled.
        self.code: grpc.StatusCode | None = None

    @property
    def streams_requests(self) -> bool:
        """Whether the client sends a stream of messages."""
        return self.kind in (CLIENT_STREAM, BIDI_STREAM)

    @property
    def streams_responses(self) -> bool:
        """Whether the server answers with a stream of messages."""
        return self.kind in (SERVER_STREAM, BIDI_STREAM)


Proceed = Callable[[], Awaitable[Any]]


class Hook:
    """One concern's part in every call; each step is a no-op unless overridden."""

    def around_call(self, call: Call) -> AbstractAsyncContextManager[None] | None:
        """A context around the whole call (hooks and handler), or None."""
        return None

    async def enter(self, call: Call) -> None:
        """Before the handler runs; raise to refuse the call."""

    def requests(self, call: Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The request stream the handler reads (for streamed requests)."""
        return requests

    async def around_handler(self, call: Call, proceed: Proceed) -> Any:
        """Run a single-response handler through `proceed`; returns its reply."""
        return await proceed()

    def item(self, call: Call) -> None:
        """Before each streamed response is written; raise to end the stream."""

    def exit(self, call: Call) -> None:
        """After the handler, whatever the outcome (if this hook's `enter` completed)."""


def _overrides(hook: Hook, step: str) -> bool:
    return getattr(type(hook), step) is not getattr(Hook, step)


class HookChain:
    """Hooks in their order, and the wrapper that runs them around a handler."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = tuple(hooks)
        # Only the steps a hook overrides run: a stream runs `item` for every
        # message, so the no-op defaults are skipped, not called.
        self._scoped = [h for h in self.hooks if _overrides(h, "around_call")]
        self._entering = [
            (h, _overrides(h, "enter"), _overrides(h, "exit"))
            for h in self.hooks
            if _overrides(h, "enter") or _overrides(h, "exit")
        ]
        self._reading = [h for h in self.hooks if _overrides(h, "requests")]
        self._around = [h for h in self.hooks if _overrides(h, "around_handler")]
        self._items = [h for h in self.hooks if _overrides(h, "item")]

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """`handler` (any of the four kinds) with the chain around it."""
        # grpc's stubs type behaviours as sync callables; on grpc.aio they are async.
        inner: Any
        if handler.unary_unary:
            kind, inner, factory = UNARY, handler.unary_unary, grpc.unary_unary_rpc_method_handler
        elif handler.stream_unary:
            kind, inner = CLIENT_STREAM, handler.stream_unary
            factory = grpc.stream_unary_rpc_method_handler
        elif handler.unary_stream:
            kind, inner = SERVER_STREAM, handler.unary_stream
            factory = grpc.unary_stream_rpc_method_handler
        else:
            kind, inner = BIDI_STREAM, handler.stream_stream
            factory = grpc.stream_stream_rpc_method_handler

        async def serve(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            return await self._serve(Call(method, kind, ctx), inner, request)

        return factory(
            serve,
            request_deserializer=malformed.tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    async def _serve(self, call: Call, inner: Any, request: Any) -> Any:
        ctx = call.ctx
        # The request id belongs to every call, whichever hooks run: handlers
        # read it, and the client gets it back on success as well as on failure.
        context.bind(None, call.request_id)
        ctx.set_trailing_metadata((("x-request-id", call.request_id),))
        async with AsyncExitStack() as stack:
            for hook in self._scoped:
                scope = hook.around_call(call)
                if scope is not None:
                    await stack.enter_async_context(scope)
            for hook, enters, exits in self._entering:
                if enters:
                    await hook.enter(call)
                if exits:
                    stack.callback(hook.exit, call)
            if not call.streams_requests:
                malformed.check(request)
            if call.streams_requests:
                request = malformed.checked(request)
                for hook in self._reading:
                    request = hook.requests(call, request)
            if not call.streams_responses:
                proceed: Proceed = partial(inner, request, ctx)
                for hook in reversed(self._around):
                    proceed = partial(hook.around_handler, call, proceed)
                reply = await proceed()
                call.code = grpc.StatusCode.OK
                return reply
            # Closed here, not whenever it is collected: its cleanup (a watch's
            # subscription, an open clip file) runs when the call ends.
            async with aclosing(inner(request, ctx)) as responses:
                async for response in responses:
                    for hook in self._items:
                        hook.item(call)
                    await ctx.write(response)
            call.code = grpc.StatusCode.OK
            return None
