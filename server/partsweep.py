"""Removing the partial files of abandoned uploads from this server's own disk.

An upload in progress is a file on the disk of the server that receives it
(`<data_dir>/blobs/<owner>/uploads/<id>.part`), appended to by each stream.
The workers' sweep (`workers/uploadsweep.py`) expires abandoned uploads,
rows and quota, and deletes their bytes where the workers can see them: files
of a data directory they share with the servers, or (with S3 storage, where
uploads in progress live in the bucket: `reelscribe.s3partials`) objects in
the bucket. A server whose data directory no worker shares still keeps its
own partial files, so each server, every `upload_sweep_interval_s`, deletes
its partial files that no stream has written to for `upload_expiry_s`: the
same idleness that expires the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def sweep_parts(blob_dir: Path, *, idle_s: float) -> int:
    """Delete partial upload files idle for `idle_s`; returns how many."""
    cutoff = time.time() - idle_s
    removed = 0
    for part in blob_dir.glob("*/uploads/*.part"):
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
    if removed:
        log.info("abandoned partial uploads removed", count=removed)
    return removed


async def run(blob_dir: Path, *, idle_s: float, interval_s: float) -> None:
    """Sweep every `interval_s` until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(sweep_parts, blob_dir, idle_s=idle_s)
        except OSError:
            log.exception("partial upload sweep failed")
