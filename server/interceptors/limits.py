"""Limits every call is held to: a rate per caller, caps on open streams per
server and per caller, and a deadline for calls that came without one."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import structlog

from reelscribe.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from reelscribe.ratelimit import RateLimiter
from server.interceptors.base import UNARY, Call, Hook, Proceed

log = structlog.get_logger(__name__)

#: Calls that create work: refused (not waved through) when Redis is down.
FAIL_CLOSED_METHODS = frozenset({"UploadMedia", "AppendUpload", "CreateJob"})


class RateLimit(Hook):
    """Each caller's calls per method, shared by all servers through Redis."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self._limiter = limiter

    async def enter(self, call: Call) -> None:
        if self._limiter is None:
            return
        assert call.principal is not None, "authentication runs first"
        method = call.name
        try:
            wait_s = await self._limiter.retry_after_s(call.principal.subject, method)
        except Exception as exc:
            if method in FAIL_CLOSED_METHODS:
                # Without the limiter, work-creating calls could be flooded.
                raise Unavailable("rate limiting is unavailable; retry shortly") from exc
            log.warning("rate limiter unavailable; allowing", error=repr(exc))
            return
        if wait_s > 0:
            raise ResourceExhausted(
                f"rate limit for {method} exceeded; retry in {wait_s:.2f} s",
                reason="RATE_LIMITED",
                retry_after_s=wait_s,
            )


class StreamCap(Hook):
    """At most `max_streams` streams (either direction) open on this server, and
    at most `max_per_user` of them held by one caller.

    The per-caller cap keeps one user (a reconnect loop, or an attacker under
    the rate limit) from taking every slot: they are refused while others still
    get streams. It is counted per process, like the server-wide cap, so a
    user's limit across N servers is N times `max_per_user`.
    """

    def __init__(self, max_streams: int, *, max_per_user: int = 100) -> None:
        self._max_streams = max_streams
        self._max_per_user = max_per_user
        #: Streams open right now in this process.
        self.open_streams = 0
        #: The same, by method name (for the active streams gauge).
        self.streams_by_method: Counter[str] = Counter()
        #: The same, by caller (subjects with none open are dropped).
        self.streams_by_user: Counter[str] = Counter()

    async def enter(self, call: Call) -> None:
        if call.kind == UNARY:
            return
        assert call.principal is not None, "authentication runs first"
        user = call.principal.subject
        if self.streams_by_user[user] >= self._max_per_user:
            raise ResourceExhausted(
                f"you have {self._max_per_user} streams open on this server, the most one "
                "user may; close one (or retry later)",
                reason="TOO_MANY_STREAMS_FOR_USER",
                retry_after_s=5.0,
            )
        if self.open_streams >= self._max_streams:
            raise ResourceExhausted(
                "too many open streams on this server; retry shortly",
                reason="TOO_MANY_STREAMS",
                retry_after_s=1.0,
            )
        self.open_streams += 1
        self.streams_by_method[call.name] += 1
        self.streams_by_user[user] += 1

    def exit(self, call: Call) -> None:
        if call.kind == UNARY:
            return
        assert call.principal is not None
        self.open_streams -= 1
        self.streams_by_method[call.name] -= 1
        user = call.principal.subject
        self.streams_by_user[user] -= 1
        if self.streams_by_user[user] <= 0:
            del self.streams_by_user[user]  # the counter stays as small as the open streams


class DefaultDeadline(Hook):
    """Unary calls without a deadline of their own get `timeout_s`.

    Streams are exempt: a watch is meant to stay open, and an upload lasts
    as long as the client takes to send it.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def around_handler(self, call: Call, proceed: Proceed) -> Any:
        if call.kind != UNARY:
            return await proceed()
        timeout_s = None if call.ctx.time_remaining() is not None else self._timeout_s
        try:
            async with asyncio.timeout(timeout_s) as scope:
                return await proceed()
        except TimeoutError as exc:
            # Only this deadline is DEADLINE_EXCEEDED; any other TimeoutError is
            # the handler's own failure.
            if scope.expired():
                raise DeadlineExceeded(f"the call took longer than {timeout_s} s") from exc
            raise
