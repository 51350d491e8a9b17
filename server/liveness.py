"""Whether any worker consumes this server's queue, published as a health status.

The server itself can be healthy while no worker runs: jobs would then be
accepted and stay QUEUED forever. Health service `reelscribe.workers` says
which: SERVING while at least one worker process beats for the queue (see
`reelscribe.presence`), NOT_SERVING otherwise. The overall status ("") keeps
describing the server alone, so a load balancer does not drop a server for a
missing worker pool.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import structlog
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2

from reelscribe import presence

log = structlog.get_logger(__name__)

#: The health service name that reports the worker pool.
WORKERS_SERVICE = "reelscribe.workers"

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class WorkerWatch:
    """Polls the worker registry and sets the `reelscribe.workers` health status."""

    def __init__(
        self,
        health: health_aio.HealthServicer,
        redis: aioredis.Redis,
        queue_name: str,
        interval_s: float = presence.BEAT_INTERVAL_S,
    ) -> None:
        self._health = health
        self._redis = redis
        self._queue_name = queue_name
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        #: Worker processes seen at the last poll (None before the first, or when unknown).
        self.live_workers: int | None = None

    async def start(self) -> None:
        """Poll once now, then in the background."""
        await self._poll()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop polling (waiting at most a second: a poll stuck in a Redis call
        must not hold the server's shutdown; the client is closed after this)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=1.0)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._poll()

    async def _poll(self) -> None:
        try:
            count: int | None = await presence.live_workers(self._redis, self._queue_name)
        except Exception as exc:  # Redis down: unknown, which is not "serving"
            log.warning("worker registry unreadable", error=repr(exc))
            count = None
        if count != self.live_workers and not count:
            log.warning("no workers consuming the queue", queue=self._queue_name)
        self.live_workers = count
        await self._health.set(WORKERS_SERVICE, _SERVING if count else _NOT_SERVING)
