"""Removing abandoned uploads: a worker duty.

Every `upload_sweep_interval_s` each worker process, one at a time (by a Redis
lock), removes the uploads in progress that saw no activity for
`upload_expiry_s`, rows and the bytes they stored (`reelscribe.uploads.sweep`:
partial files on this machine's disk, or multipart uploads and staged objects
in S3), so
abandoned resumable uploads neither fill the disk nor hold their owner's
storage quota.
"""

from __future__ import annotations

import uuid

import structlog

from reelscribe import uploads
from reelscribe.partials import open_partials
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_LOCK_KEY = "reelscribe:upload-sweep:lock"
_LOCK_TTL_MS = 10 * 60 * 1000
#: Delete the lock only if it is still the one this process took.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


async def sweep_once(rt: Runtime) -> int:
    """One sweep; returns how many uploads it removed."""
    idle_s = rt.settings.upload_expiry_s
    partials = open_partials(rt.pool, rt.blobs, rt.settings.blob_dir, idle_s=idle_s)
    removed = await uploads.sweep(rt.pool, rt.redis, partials, idle_s=idle_s)
    if removed:
        log.info("expired uploads removed", count=removed)
    return removed


class UploadSweep(Periodic):
    """Runs `sweep_once` periodically (one process per interval)."""

    name = "upload-sweep"

    def interval_s(self, rt: Runtime) -> float:
        return rt.settings.upload_sweep_interval_s

    def tick(self, rt: Runtime) -> None:
        async def _run() -> None:
            # Held while sweeping (expiring on its own if this process dies), then
            # released: sweeping twice is harmless, at the same time only wasteful.
            token = uuid.uuid4().hex
            if not await rt.redis.set(_LOCK_KEY, token, nx=True, px=_LOCK_TTL_MS):
                return
            try:
                await sweep_once(rt)
            finally:
                await rt.redis.eval(_RELEASE, 1, _LOCK_KEY, token)

        rt.call(_run(), timeout_s=None)
