"""Limits every call is held to: a rate per caller, a cap on open streams
per server, and a deadline for calls that came without one."""

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
FAIL_CLOSED_METHODS = frozenset({"UploadMedia", "CreateJob"})


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
    """At most `max_streams` streams (either direction) open on this server."""

    def __init__(self, max_streams: int) -> None:
        self._max_streams = max_streams
        #: Streams open right now in this process.
        self.open_streams = 0
        #: The same, by method name (for the active streams gauge).
        self.streams_by_method: Counter[str] = Counter()

    async def enter(self, call: Call) -> None:
        if call.kind == UNARY:
            return
        if self.open_streams >= self._max_streams:
            raise ResourceExhausted(
                "too many open streams on this server; retry shortly",
                reason="TOO_MANY_STREAMS",
                retry_after_s=1.0,
            )
        self.open_streams += 1
        self.streams_by_method[call.name] += 1

    def exit(self, call: Call) -> None:
        if call.kind != UNARY:
            self.open_streams -= 1
            self.streams_by_method[call.name] -= 1


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
