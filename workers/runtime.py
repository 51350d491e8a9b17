"""An asyncio loop thread that gives synchronous actors the async stack.

Dramatiq actors run in worker threads; the database and event code is async
(asyncpg, redis.asyncio) and shared with the server. Each worker process keeps
one event loop in a background thread with one pool, and actors submit
coroutines to it. CPU-heavy work (decoding, inference) stays in the actor's
own thread, so it never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
import dramatiq
import redis.asyncio as aioredis

from reelscribe import blobs, db, events, redis_client
from reelscribe.config import Settings, get_settings

T = TypeVar("T")


class Runtime:
    """The loop thread, the Postgres pool and the Redis client of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="runtime-loop", daemon=True
        )
        self._thread.start()
        self.pool: asyncpg.Pool = self.call(db.create_pool(settings.database_url, max_size=4))
        self.redis: aioredis.Redis = redis_client.connect(settings.redis_url)
        #: The broker actors were declared on (set up by `workers.broker`).
        self.broker: dramatiq.Broker = dramatiq.get_broker()
        #: Where uploads, clips and (with S3) the audio between stages live.
        self.blobs: blobs.Blobs = blobs.open_blob_store(
            settings, outage_wait_s=settings.blob_outage_wait_s
        )

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = 120.0) -> T:
        """Run `coro` on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def publish(self, recorded: events.RecordedEvent | None) -> None:
        """Fan a committed event out; failures only delay watchers (they poll the log)."""
        if recorded is None:
            return
        with contextlib.suppress(Exception):
            self.call(events.publish(self.redis, recorded), timeout_s=5.0)

    def close(self) -> None:
        """Close clients and stop the loop."""
        try:
            self.call(self.pool.close(), timeout_s=10.0)
            self.call(self.redis.aclose(), timeout_s=5.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, created on first use (after fork)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(get_settings())
        return _runtime
