"""CORS for the gRPC-Web listener: configured origins only.

A page from another origin calling gRPC-Web sends `content-type:
application/grpc-web+proto` and an `authorization` header, so its browser
asks first (a preflight); only origins in `web_cors_origins` get a yes, and
only their responses expose the status headers a client must read. The
console served by the listener itself is same-origin and needs none of this.
Nothing here relies on cookies: tokens travel in `authorization`, so there
are no credentials to allow.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Request headers a gRPC-Web client sends (connect-web's, grpc-web's and ours).
ALLOWED_HEADERS = (
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "authorization",
    "grpc-timeout",
    "x-request-id",
    "traceparent",
    "tracestate",
)
#: Response headers a browser lets the page read: the status of a
#: trailers-only response travels in them.
EXPOSED_HEADERS = (
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
)
#: How long a browser may cache a preflight answer.
MAX_AGE_S = 7200


class CorsPolicy:
    """Which origins may call from elsewhere, and the headers that say so."""

    def __init__(self, origins: Iterable[str]) -> None:
        allowed = {origin.rstrip("/") for origin in origins if origin}
        self._any = "*" in allowed
        self._origins = frozenset(allowed - {"*"})

    def allows(self, origin: str) -> bool:
        """Whether pages from `origin` may call."""
        return self._any or origin in self._origins

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """CORS headers for a call from `origin` (none for an origin not allowed)."""
        if origin is None or not self.allows(origin):
            return [("vary", "origin")] if self._origins or self._any else []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-expose-headers", ", ".join(EXPOSED_HEADERS)),
            ("vary", "origin"),
        ]

    def preflight_headers(self, origin: str | None) -> list[tuple[str, str]] | None:
        """The answer to a preflight from `origin`, or None to refuse it."""
        if origin is None or not self.allows(origin):
            return None
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", "POST, OPTIONS"),
            ("access-control-allow-headers", ", ".join(ALLOWED_HEADERS)),
            ("access-control-expose-headers", ", ".join(EXPOSED_HEADERS)),
            ("access-control-max-age", str(MAX_AGE_S)),
            ("vary", "origin"),
        ]
