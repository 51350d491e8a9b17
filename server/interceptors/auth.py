"""Authentication: the caller's token becomes the call's principal.

The principal is bound in a contextvar the handler's task sees
(`server.context.current_principal`). A stream may not outlive its token: it
ends with UNAUTHENTICATED (TOKEN_EXPIRED) at the first message after expiry.
"""

from __future__ import annotations

import time

import structlog

from reelscribe.auth import TokenVerifier
from reelscribe.errors import Unauthenticated
from server import context
from server.interceptors.base import Call, Hook, metadata_value

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

    def item(self, call: Call) -> None:
        # Streams carry at least a heartbeat every few seconds, so this runs often.
        assert call.principal is not None
        if time.time() > call.principal.expires_at + self._leeway_s:
            raise Unauthenticated(
                "token expired during the stream; reconnect with a fresh token",
                reason="TOKEN_EXPIRED",
            )
