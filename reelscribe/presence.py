"""Which worker processes are alive and consuming a queue, as seen in Redis.

Each worker process beats every `BEAT_INTERVAL_S` into a sorted set per queue
(member: host and pid, score: the time of its last beat). A process whose beat
is older than `STALE_AFTER_S` is dead or wedged. Servers read the set for
their health (`reelscribe.Workers`) and `reelscribe doctor` for its report: a
queue that nobody consumes is a service that accepts jobs it will never run.
"""

from __future__ import annotations

import os
import socket
import time

import redis.asyncio as aioredis

#: How often a worker process beats.
BEAT_INTERVAL_S = 2.0
#: A beat older than this no longer counts.
STALE_AFTER_S = 10.0


def _key(queue_name: str) -> str:
    return f"reelscribe:workers:{queue_name}"


def worker_id() -> str:
    """This process's member name: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(redis: aioredis.Redis, queue_name: str, member: str) -> None:
    """Record that `member` is alive and consuming `queue_name` now."""
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(_key(queue_name), {member: now})
        pipe.zremrangebyscore(_key(queue_name), "-inf", now - STALE_AFTER_S)
        pipe.expire(_key(queue_name), int(STALE_AFTER_S * 6))
        await pipe.execute()


async def leave(redis: aioredis.Redis, queue_name: str, member: str) -> None:
    """Take `member` off the set (a clean shutdown)."""
    await redis.zrem(_key(queue_name), member)


async def live_workers(redis: aioredis.Redis, queue_name: str) -> int:
    """How many worker processes beat for `queue_name` within `STALE_AFTER_S`."""
    return int(await redis.zcount(_key(queue_name), time.time() - STALE_AFTER_S, "+inf"))
