"""The server's interceptor: the hooks of every concern, in their order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import grpc

from reelscribe.auth import TokenVerifier
from reelscribe.ratelimit import RateLimiter
from server.interceptors.auth import PUBLIC_SERVICES, Authenticate
from server.interceptors.base import HookChain
from server.interceptors.drain import Drain
from server.interceptors.errors import MapErrors
from server.interceptors.limits import DefaultDeadline, RateLimit, StreamCap
from server.interceptors.observe import Observe


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates callers, applies limits, maps exceptions to statuses,
    measures and traces calls, and drains them at shutdown.

    The order is the point: observing comes first, so the span and metrics
    cover everything, including a refused call; errors are mapped inside it,
    so the recorded code is the one the client gets; a draining server refuses
    a call before looking at its token; the caller is known before its rate
    is checked; and a refused call never counts as an open stream.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        leeway_s: float = 0.0,
        limiter: RateLimiter | None = None,
        max_streams: int = 2000,
        max_streams_per_user: int = 100,
        default_timeout_s: float = 60.0,
    ) -> None:
        self._drain = Drain()
        self._auth = Authenticate(verifier, leeway_s=leeway_s)
        self._streams = StreamCap(max_streams, max_per_user=max_streams_per_user)
        self._chain = HookChain(
            (
                Observe(),
                MapErrors(),
                self._drain,
                self._auth,
                RateLimit(limiter),
                self._streams,
                DefaultDeadline(default_timeout_s),
            )
        )

    @property
    def open_streams(self) -> int:
        """Streams open right now in this process."""
        return self._streams.open_streams

    @property
    def streams_by_method(self) -> Counter[str]:
        """Open streams by method name (for the active streams gauge)."""
        return self._streams.streams_by_method

    @property
    def streams_by_user(self) -> Counter[str]:
        """Open streams by caller (users with none open are absent)."""
        return self._streams.streams_by_user

    @property
    def authenticated_calls(self) -> int:
        """Calls that passed authentication (a probe for tests and metrics)."""
        return self._auth.authenticated_calls

    @property
    def draining(self) -> bool:
        """True once the server is shutting down: new calls and streams are refused."""
        return self._drain.draining

    def begin_shutdown(self) -> None:
        """Refuse new calls and end open streams (they raise `ShuttingDown`)."""
        self._drain.begin()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None:
            return handler
        return self.wrap(handler, method)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """`handler` of `method` with every hook around it (public services as they are).

        The gRPC-Web listener (`server.web`) wraps its handlers here too.
        """
        if method.startswith(PUBLIC_SERVICES):
            return handler
        return self._chain.wrap(handler, method)
