"""Async Redis clients that ride out a Redis restart, and report an outage as
`Unavailable`.

A pooled connection to a Redis that restarted fails on its next use; with
retries on connection errors the client reconnects instead of failing the
call that happened to draw the stale connection. When Redis stays away past
the retries, the command raises `Unavailable` (from redis-py's error), so the
code above never needs to know what a lost Redis connection looks like.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from reelscribe.errors import Unavailable

#: Errors that say Redis is unreachable or cannot take writes right now,
#: rather than that the command is wrong.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    # Unreachable, timing out, or loading its data after a restart (BusyLoadingError
    # is a ConnectionError).
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A replica after a failover.
    redis.exceptions.ReadOnlyError,
    # Socket errors that reach past redis-py's own wrapping.
    OSError,
)


class Redis(aioredis.Redis):
    """redis.asyncio's client; commands raise `Unavailable` when Redis is away.

    Every command (scripts included) goes through `execute_command`. Pub/sub
    subscriptions (the server's event hub) use connections of their own and
    handle reconnecting themselves.
    """

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("a backing service is unavailable; retry shortly") from exc


def connect(url: str) -> Redis:
    """A client for `url` with reconnecting retries and health checks."""
    client = Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        socket_connect_timeout=5,
    )
    assert isinstance(client, Redis)  # `from_url` builds `cls`; typed as the base class
    return client
