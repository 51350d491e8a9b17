"""Removing scratch files that no stage will read again: a worker duty.

A job's scratch directory (`<data_dir>/work/<owner>/<job>`, decoded audio, a
chunk's fetched audio, a copy of the media) is removed by whichever stage
ends the job. A worker that was killed mid-stage leaves its own copy behind,
on a disk no other machine sees when blobs are in S3. Each worker process
therefore removes, at start and every `scratch_sweep_interval_s`, the
directories of jobs that have ended or no longer exist.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import structlog

from reelscribe.db import jobs as jobs_db
from reelscribe.states import TERMINAL
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

#: A directory younger than this is left alone (its job row may not be visible yet).
_MIN_AGE_S = 60.0


def _job_dirs(root: Path) -> list[tuple[Path, uuid.UUID]]:
    found = []
    for path in root.glob("*/*"):
        try:
            found.append((path, uuid.UUID(path.name)))
        except ValueError:
            continue
    return found


async def sweep_once(rt: Runtime, *, min_age_s: float = _MIN_AGE_S) -> int:
    """Remove the scratch directories of ended jobs; returns how many."""
    now = time.time()
    candidates = [
        (path, job_id)
        for path, job_id in _job_dirs(rt.settings.data_dir / "work")
        if now - path.stat().st_mtime >= min_age_s
    ]
    if not candidates:
        return 0
    async with rt.pool.acquire() as conn:
        states = await jobs_db.states_of(conn, [job_id for _, job_id in candidates])
    removed = 0
    for path, job_id in candidates:
        state = states.get(job_id)
        if state is None or state in TERMINAL:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("scratch of ended jobs removed", count=removed)
    return removed


class ScratchSweep(Periodic):
    """Runs `sweep_once` when the worker starts and then periodically."""

    name = "scratch-sweep"
    at_boot = True

    def interval_s(self, rt: Runtime) -> float:
        return rt.settings.scratch_sweep_interval_s

    def tick(self, rt: Runtime) -> None:
        rt.call(sweep_once(rt), timeout_s=None)
