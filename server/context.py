"""Per-call context: the authenticated principal and the request id."""

from __future__ import annotations

import contextvars

from reelscribe.auth import Principal

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_principal() -> Principal:
    """The caller of the RPC being handled (set by the auth interceptor)."""
    return _principal.get()


def current_request_id() -> str:
    """The id of the RPC being handled, also sent to the client."""
    return _request_id.get()


def bind(principal: Principal | None, request_id: str) -> None:
    """Set the call context for the current task."""
    if principal is not None:
        _principal.set(principal)
    _request_id.set(request_id)
