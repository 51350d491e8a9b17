"""Authentication: the caller's token becomes the call's principal.

The principal is bound in a contextvar the handler's task sees
(`server.context.current_principal`). A stream may not outlive its token: it
ends with UNAUTHENTICATED (TOKEN_EXPIRED) saying how to resume, at the first
message it would send after expiry, and an upload the moment its token expires
(whether the client is sending or idle; the upload handler's cleanup records
the bytes stored, so it resumes with a fresh token).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from reelscribe.auth import TokenVerifier
from reelscribe.errors import Unauthenticated
from server import context
from server.interceptors.base import Call, Hook, metadata_value
from server.interceptors.drain import RESUME_HINTS

#: Methods callable without a token: health checks and reflection. The
#: interceptor leaves them alone altogether (no metrics, no span either).
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class Authenticate(Hook):
    """Verifies the `authorization` metadata and binds the principal."""

    def __init__(self, verifier: TokenVerifier, *, leeway_s: float = 0.0) -> None:
        self._verifier = verifier
        #: Streams end this long after their token's expiry (the verifier's clock skew).
        self._leeway_s = leeway_s
        #: Calls that passed authentication (a probe for tests and metrics).
        self.authenticated_calls = 0

    async def enter(self, call: Call) -> None:
        principal = await self._verifier.verify(metadata_value(call.ctx, "authorization"))
        call.principal = principal
        context.bind(principal, call.request_id)
        structlog.contextvars.bind_contextvars(user_id=principal.subject)
        self.authenticated_calls += 1

    def _expires_at(self, call: Call) -> float:
        assert call.principal is not None, "authentication ran"
        return call.principal.expires_at + self._leeway_s

    def item(self, call: Call) -> None:
        # Streams carry at least a heartbeat every few seconds, so this runs often.
        if time.time() > self._expires_at(call):
            raise token_expired(call.name)

    def requests(self, call: Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return self._until_expiry(call, requests)

    async def _until_expiry(self, call: Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """`requests` until the token expires: then `token_expired`, even while
        the handler waits for a client that sends nothing."""
        iterator = aiter(requests)
        while True:
            remaining_s = self._expires_at(call) - time.time()
            if remaining_s <= 0:
                raise token_expired(call.name)
            try:
                async with asyncio.timeout(remaining_s) as scope:
                    item = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if scope.expired():
                    raise token_expired(call.name) from None
                raise
            yield item


def token_expired(method_name: str) -> Unauthenticated:
    """The error that ends a stream of `method_name` whose token expired."""
    hint = RESUME_HINTS.get(method_name, "call again")
    return Unauthenticated(
        f"token expired during the stream; with a fresh token, {hint}", reason="TOKEN_EXPIRED"
    )
