"""The servicer context of a gRPC-Web call: what grpc.aio's context gives a handler.

The interceptor hooks (`server.interceptors`) and the servicers were written
against `grpc.aio.ServicerContext`. sonora's own context is a synchronous
`grpc.ServicerContext` that does not fit them: its `code` is an attribute where
grpc.aio has a method (the error mapping calls `ctx.code()`), its `abort` takes
no trailing metadata (so no `grpc-status-details-bin`) and raises a bare
`grpc.RpcError` instead of grpc.aio's `AbortError` (so the error mapping would
take an abort for a bug and answer INTERNAL), it has no `write` (the hooks
write streamed responses through the context), and `peer`, `add_callback`
and `is_active` raise NotImplementedError. This class implements grpc.aio's
interface instead, over one HTTP request; `server.web.grpcweb` drives it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc
import structlog
from grpc.aio import Metadata as _AioMetadata

log = structlog.get_logger(__name__)

#: One metadata item: text, or bytes under a key ending in `-bin`.
MetadataItem = tuple[str, str | bytes]
Metadata = tuple[MetadataItem, ...]
#: What grpc.aio takes as metadata: its `Metadata`, or a sequence of items.
MetadataType = _AioMetadata | Sequence[MetadataItem]


class WebServicerContext(grpc.aio.ServicerContext):
    """grpc.aio's servicer context for one gRPC-Web call (a unary request)."""

    def __init__(
        self,
        metadata: Sequence[MetadataItem],
        *,
        peer: str,
        deadline: float | None,
        write: Callable[[Any], Awaitable[None]],
    ) -> None:
        self._metadata: Metadata = tuple(metadata)
        self._peer = peer
        #: `time.monotonic()` after which the call is past its deadline (None: no deadline).
        self._deadline = deadline
        self._write = write
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._initial: Metadata = ()
        #: Whether the response headers went out (initial metadata is then fixed).
        self.headers_sent = False
        self._trailing: Metadata = ()
        self._callbacks: list[Callable[[Any], None]] = []
        self._cancelled = False
        self._done = False

    # -- what the call sent -----------------------------------------------------------

    def invocation_metadata(self) -> Metadata:  # type: ignore[override]  # (as grpc.aio: a tuple)
        """The request's headers as metadata (`-bin` values decoded)."""
        return self._metadata

    def peer(self) -> str:
        """The client's address, as grpc names it (`ipv4:127.0.0.1:54321`)."""
        return self._peer

    def time_remaining(self) -> float | None:  # type: ignore[override]  # (None: no deadline)
        """Seconds left before the call's deadline (`grpc-timeout`), or None."""
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def peer_identities(self) -> None:
        return None  # no TLS client certificates on this listener

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    async def read(self) -> NoReturn:
        # gRPC-Web from a browser cannot stream requests; such methods are refused.
        raise RuntimeError("gRPC-Web calls carry a single request message")

    # -- what the call answers ----------------------------------------------------------

    async def write(self, message: Any) -> None:
        """Send one streamed response message."""
        await self._write(message)

    async def send_initial_metadata(self, initial_metadata: MetadataType) -> None:
        if self.headers_sent:
            raise RuntimeError("initial metadata was already sent")
        self._initial = tuple(initial_metadata)

    def initial_metadata(self) -> Metadata:
        """What `send_initial_metadata` set (sent with the response headers)."""
        return self._initial

    def set_trailing_metadata(self, trailing_metadata: MetadataType) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> Metadata:  # type: ignore[override]  # (a tuple)
        return self._trailing

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:  # type: ignore[override]  # (None: not set)
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str | None:  # type: ignore[override]  # (None: not set)
        return self._details

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: MetadataType = (),
    ) -> NoReturn:
        """End the call with `code` (as grpc.aio does: raises `AbortError`)."""
        if code == grpc.StatusCode.OK:
            raise ValueError("abort needs a status other than OK")
        self._code = code
        self._details = details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_compression(self, compression: grpc.Compression) -> None:
        pass  # responses are never compressed here

    def disable_next_message_compression(self) -> None:
        pass

    # -- how the call ended --------------------------------------------------------------

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        """Run `callback(self)` when the call ends (at once if it has)."""
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def cancelled(self) -> bool:
        """Whether the call ended because the client left or its deadline passed."""
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def finish(self, *, cancelled: bool) -> None:
        """Mark the call ended and run the done callbacks (once)."""
        if self._done:
            return
        self._done = True
        self._cancelled = cancelled
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("done callback of a gRPC-Web call failed")
