"""gRPC-Web calls: sonora's handler registry, with the server's interceptor around them.

`GrpcWebApp` is sonora's `grpcASGI`, a `grpc.Server` as far as the generated
`add_*Servicer_to_server` functions go, so the same servicer objects register
on it as on the grpc.aio server. Each handler it finds is wrapped by the same
`CallInterceptor` (auth, tenancy, limits, drain, error mapping, metrics, logs),
and runs with a grpc.aio-style context (`server.web.context`).

sonora's own request flow is not used, because it breaks those rules: an
error status drops the trailing metadata (so no `grpc-status-details-bin`, no
request id), an error after the first streamed message starts a second
response, a stream that ends before its first message fails, a client that
leaves is noticed only while a message is being sent (not while a watch waits
for the next) and its handler is never closed (it would hold its stream slot),
unary trailers come out as `b'grpc-status': b'0'`, and its CORS answer is
fixed (the request's Host as the allowed origin, any header) rather than a
list of origins. `serve` below runs one call instead:

* the request (one message: browsers cannot stream requests) is read whole,
  bounded like native gRPC's largest message;
* the handler runs in a task of its own while the connection is watched: a
  client that disconnects cancels it at once, which ends the hooks' scope (the
  stream slot is released, the call is recorded as CANCELLED);
* `grpc-timeout` is a deadline: the handler is cancelled when it passes, and
  the call ends with DEADLINE_EXCEEDED;
* messages are written as frames as the handler produces them; the status goes
  in a trailers frame, or, for a call that failed before any message, in the
  response headers ("trailers-only", as Envoy does), with the same
  `grpc-status-details-bin` and `x-request-id` a native client gets.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import structlog
from sonora.asgi import grpcASGI

from reelscribe import errors
from server import status
from server.interceptors.malformed import MALFORMED
from server.web import frames
from server.web.context import WebServicerContext

log = structlog.get_logger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Wrap = Callable[[grpc.RpcMethodHandler, str], grpc.RpcMethodHandler]

#: Content types of gRPC-Web requests (binary, and base64 text).
CONTENT_TYPES = ("application/grpc-web", "application/grpc-web+proto")
TEXT_CONTENT_TYPES = ("application/grpc-web-text", "application/grpc-web-text+proto")


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header `name` (lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class GrpcWebApp(grpcASGI):
    """The services, served over gRPC-Web (see the module docstring)."""

    def __init__(self, wrap: Wrap, *, max_request_bytes: int) -> None:
        super().__init__(application=None, enable_cors=False)
        self._wrap = wrap
        self._max_request_bytes = max_request_bytes
        #: Wrapped handlers by path (only paths that have one: a scan of
        #: unknown paths must not grow it).
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As an ASGI app of its own: calls only (`server.web.router` adds the rest)."""
        if scope["type"] == "http" and scope["method"] == "POST":
            await self.serve(scope, receive, send, ())
        elif scope["type"] == "http":
            await plain_response(send, 405, "gRPC-Web calls are POSTs\n")

    def handler(self, path: str) -> grpc.RpcMethodHandler | None:
        """The interceptor-wrapped handler of method `path`, or None."""
        found = self._wrapped.get(path)
        if found is None:
            raw = self._get_rpc_handler(path)
            if raw is None:
                return None
            found = self._wrapped[path] = self._wrap(raw, path)
        return found

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, extra_headers: Sequence[tuple[str, str]]
    ) -> None:
        """Answer one gRPC-Web POST (`extra_headers`: CORS headers for its origin)."""
        content_type = (header(scope, b"content-type") or b"").decode("latin-1")
        base_type = content_type.partition(";")[0].strip().lower()
        text = base_type in TEXT_CONTENT_TYPES
        if not text and base_type not in CONTENT_TYPES:
            await plain_response(
                send,
                415,
                "gRPC-Web takes content-type application/grpc-web+proto "
                "(or application/grpc-web-text)\n",
                extra_headers,
            )
            return
        response_type = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
        call = _WebCall(
            scope, receive, send, text=text, content_type=response_type, headers=extra_headers
        )
        path: str = scope["path"]
        handler = self.handler(path)
        if handler is None:
            await call.refuse(errors.Unimplemented(f"no method {path} on this server"))
            return
        if handler.request_streaming:
            await call.refuse(
                errors.Unimplemented(
                    f"{path} streams requests, which gRPC-Web cannot carry; "
                    "upload with JobService.AppendUpload instead",
                    reason="CLIENT_STREAMING_OVER_GRPC_WEB",
                )
            )
            return
        body = await call.read_body(self._max_request_bytes)
        if body is None:
            return  # the client left, or was answered
        try:
            payloads = frames.request_messages(body, text=text)
        except frames.FramingError:
            payloads = []
        # A body that is not exactly one message reaches the hooks as the
        # malformed marker: INVALID_ARGUMENT, after authentication (as native gRPC).
        request = (
            handler.request_deserializer(payloads[0])
            if len(payloads) == 1 and handler.request_deserializer is not None
            else MALFORMED
        )
        await call.run(handler, request)


async def plain_response(
    send: Send, code: int, text: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> None:
    """A short text/plain answer."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *((k.encode(), v.encode()) for k, v in extra_headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _WebCall:
    """One gRPC-Web call on the wire: its response headers, frames and trailers."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        text: bool,
        content_type: str,
        headers: Sequence[tuple[str, str]],
    ) -> None:
        self._receive = receive
        self._send = send
        self._text = text
        self._content_type = content_type
        #: Response headers besides the content type (CORS).
        self._extra_headers = list(headers)
        self._started = False
        self._serializer: Callable[[Any], bytes] | None = None
        timeout = frames.parse_timeout(header(scope, b"grpc-timeout") or b"")
        host, port = scope.get("client") or ("", 0)
        self.ctx = WebServicerContext(
            frames.request_metadata(scope["headers"]),
            # As grpc names peers: ipv4:127.0.0.1:5000, ipv6:[::1]:5000.
            peer=f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}",
            deadline=None if timeout is None else time.monotonic() + timeout,
            write=self._write_message,
        )

    def _headers(self, more: Sequence[tuple[str, str]] = ()) -> list[tuple[bytes, bytes]]:
        items = [
            ("content-type", self._content_type),
            *self._extra_headers,
            *frames.metadata_headers(self.ctx.initial_metadata()),
            *more,
        ]
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in items]

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            self.ctx.headers_sent = True
            await self._send(
                {"type": "http.response.start", "status": 200, "headers": self._headers()}
            )

    async def _write_message(self, message: Any) -> None:
        assert self._serializer is not None
        await self._start()
        frame = frames.message_frame(self._serializer(message), text=self._text)
        await self._send({"type": "http.response.body", "body": frame, "more_body": True})

    async def read_body(self, limit: int) -> bytes | None:
        """The whole request body; None if the client left or it was too large (answered)."""
        body = bytearray()
        while True:
            event = await self._receive()
            if event["type"] == "http.disconnect":
                return None
            body += event.get("body", b"")
            if len(body) > limit:
                await self.refuse(
                    errors.ResourceExhausted(
                        f"the request is larger than {limit} bytes", reason="MESSAGE_TOO_LARGE"
                    )
                )
                return None
            if not event.get("more_body", False):
                return bytes(body)

    async def refuse(self, exc: errors.ReelscribeError) -> None:
        """End the call before any handler ran (no hooks: nothing was called)."""
        request_id = uuid.uuid4().hex
        rich = status.to_status(exc, request_id=request_id)
        await self._finish(
            rich.code, rich.details, (*rich.trailing_metadata, ("x-request-id", request_id))
        )

    async def run(self, handler: grpc.RpcMethodHandler, request: Any) -> None:
        """Run the (wrapped) handler until it ends, the client leaves or the deadline passes."""
        self._serializer = handler.response_serializer
        ctx = self.ctx
        work = asyncio.create_task(_invoke(handler, request, ctx))
        gone = asyncio.create_task(self._disconnected())
        try:
            done, _ = await asyncio.wait(
                (work, gone), timeout=ctx.time_remaining(), return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            # The listener is being torn down: stop the handler with it.
            await _cancel(work)
            ctx.finish(cancelled=True)
            raise
        finally:
            gone.cancel()
        if work not in done:
            # The client left (nothing to answer) or the deadline passed.
            await _cancel(work)
            ctx.finish(cancelled=True)
            if gone not in done:
                await self._finish(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", ())
            return
        ctx.finish(cancelled=False)
        try:
            reply = work.result()
        except grpc.aio.AbortError:
            code = ctx.code() or grpc.StatusCode.UNKNOWN
        except Exception:
            # The interceptor maps every handler error; one escaping it is a bug.
            log.exception("gRPC-Web handler failed outside the interceptor")
            code = ctx.code() or grpc.StatusCode.UNKNOWN
            if code == grpc.StatusCode.UNKNOWN:
                ctx.set_details("unexpected error")
        else:
            code = ctx.code() or grpc.StatusCode.OK
            if reply is not None and code == grpc.StatusCode.OK:
                await self._write_message(reply)
        await self._finish(code, ctx.details(), ctx.trailing_metadata())

    async def _disconnected(self) -> None:
        """Return once the client has gone (the body was read: only that can come)."""
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def _finish(
        self,
        code: grpc.StatusCode,
        details: str | None,
        trailing: Sequence[tuple[str, str | bytes]],
    ) -> None:
        trailers = frames.status_headers(code, details, trailing)
        if not self._started and code != grpc.StatusCode.OK:
            # Trailers-only: the status travels in the headers, with no body.
            self._started = True
            await self._send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*self._headers(trailers), (b"content-length", b"0")],
                }
            )
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._start()
        frame = frames.trailers_frame(trailers, text=self._text)
        await self._send({"type": "http.response.body", "body": frame, "more_body": False})


async def _invoke(handler: grpc.RpcMethodHandler, request: Any, ctx: WebServicerContext) -> Any:
    """Call a unary-request handler; a streamed response is written through `ctx`."""
    behaviour: Any = handler.unary_unary or handler.unary_stream
    result = behaviour(request, ctx)
    if inspect.isasyncgen(result):
        # An unwrapped streaming handler yields its messages instead of writing them.
        async for message in result:
            await ctx.write(message)
        return None
    reply = await result
    return reply if handler.unary_unary else None


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until its cleanup (the hooks' exits) has run."""
    task.cancel()
    # `wait`, not `await task`: a cancellation of our own must still propagate.
    await asyncio.wait((task,))
    if not task.cancelled() and task.exception() is not None:
        log.warning("gRPC-Web handler failed while cancelled", error=repr(task.exception()))
