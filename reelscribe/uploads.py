"""Uploads in progress, as the server and the workers both see them.

An upload in progress is a row in `uploads` (without a media id) and the bytes
stored so far, kept by a `reelscribe.partials.Partials` (a partial file on the
receiving server's disk, or objects in S3); one call at a time writes it,
holding a Redis lock named after the upload. An upload with no activity for
`upload_expiry_s` has been abandoned: `sweep` (a worker duty) removes its row
and bytes (with S3: its multipart upload and staged objects), taking the same
lock first, so it never removes an upload a
stream is writing. Expired ids are remembered for a while, so `GetUpload` can
say the upload expired rather than that it never existed.
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
import structlog

from reelscribe import blobs
from reelscribe.db import uploads as uploads_db
from reelscribe.errors import Unavailable
from reelscribe.partials import Partials

log = structlog.get_logger(__name__)

#: How long one stream may hold an upload's lock (renewed by nothing: a stream
#: that outlives it can be joined by another, which the offset check catches).
LOCK_TTL_MS = 10 * 60 * 1000
#: How long an expired upload id is remembered.
EXPIRED_MEMORY_S = 7 * 24 * 3600
#: Uploads removed per database round trip of a sweep.
SWEEP_BATCH = 500


def lock_key(owner: str, upload_id: str) -> str:
    """Redis key of the lock one writer of an upload holds."""
    return f"reelscribe:upload-lock:{blobs.owner_prefix(owner)}:{upload_id}"


def _expired_key(owner: str, upload_id: str) -> str:
    return f"reelscribe:upload-expired:{blobs.owner_prefix(owner)}:{upload_id}"


async def was_expired(redis: aioredis.Redis, owner: str, upload_id: str) -> bool:
    """Whether the upload was removed for inactivity (in the last `EXPIRED_MEMORY_S`)."""
    return bool(await redis.exists(_expired_key(owner, upload_id)))


async def expire(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    partials: Partials,
    owner: str,
    upload_id: str,
    idle_s: float,
) -> bool:
    """Remove one upload if it is (still) idle for `idle_s`; the caller holds its lock.

    Returns whether it was removed. The bytes go first, then the row: a store
    that fails meanwhile (`Unavailable`) leaves the row for the next sweep to
    try again, rather than bytes that nothing names. No stream can start in
    between, since the caller holds the upload's lock.
    """
    async with pool.acquire() as conn:
        row = await uploads_db.get_upload(conn, owner, upload_id)
        stale = row is not None and await uploads_db.is_stale(conn, row, idle_s)
    if row is None or not stale:
        return False
    await partials.removed(row)
    async with pool.acquire() as conn:
        if await uploads_db.delete_stale_upload(conn, owner, upload_id, idle_s) is None:
            return False
    await redis.set(_expired_key(owner, upload_id), "1", ex=EXPIRED_MEMORY_S)
    log.info("upload expired", upload_id=upload_id, idle_s=idle_s)
    return True


async def sweep(
    pool: asyncpg.Pool, redis: aioredis.Redis, partials: Partials, *, idle_s: float
) -> int:
    """Remove every upload in progress idle for `idle_s`; returns how many.

    Uploads a stream is writing right now (their lock is held) are left for a
    later sweep.
    """
    removed = 0
    while True:
        async with pool.acquire() as conn:
            rows = await uploads_db.stale_uploads(conn, idle_s, SWEEP_BATCH)
        removed_now = 0
        for row in rows:
            owner, upload_id = row["owner"], row["upload_id"]
            lock = lock_key(owner, upload_id)
            if not await redis.set(lock, "sweep", nx=True, px=LOCK_TTL_MS):
                continue
            try:
                removed_now += await expire(pool, redis, partials, owner, upload_id, idle_s)
            except Unavailable as exc:  # the blob store: the row stays for the next sweep
                log.warning("expired upload kept for now", upload_id=upload_id, error=exc.message)
            finally:
                await redis.delete(lock)
        removed += removed_now
        if len(rows) < SWEEP_BATCH or not removed_now:
            return removed
