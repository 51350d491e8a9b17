"""Finds jobs whose broker message was lost and sends it again.

A job waits on some message at every moment: the prepare message while
queued, one message per pending chunk while transcribing, the merge message
after the last chunk, the derive message once the transcript exists (or
from the start, for a child job). Their ids are recorded in Postgres before
sending. If Redis loses them (a restart without persistence, a flushed
database), the job would wait forever; the reconciler notices that none of a stale job's
messages exists in the broker any more and enqueues them again. Stages are
idempotent, so a rare duplicate costs time, never correctness.
"""

from __future__ import annotations

from typing import Any

import structlog

from reelscribe import queue
from reelscribe.db import chunks as chunks_db
from reelscribe.db import jobs as jobs_db
from reelscribe.states import JobState, Stage
from workers.context import JobContext
from workers.periodic import Periodic
from workers.runtime import Runtime

log = structlog.get_logger(__name__)

_LOCK_KEY = "reelscribe:reconciler:lock"
#: Stages of the prepare message.
_PREPARE_STAGES = frozenset({Stage.QUEUED, Stage.INGEST, Stage.EXTRACT_AUDIO, Stage.DETECT_SPEECH})


async def _stale_jobs(rt: Runtime) -> list[Any]:
    async with rt.pool.acquire() as conn:
        return await jobs_db.stale_jobs(
            conn, grace_s=rt.settings.reconcile_grace_s, queue=rt.settings.queue_name
        )


def reconcile_once(rt: Runtime) -> int:
    """One sweep; returns how many jobs got their messages re-sent."""
    from workers import stages  # late: stages imports the model stack

    jq = queue.JobQueue(rt.broker, rt.settings.queue_name)
    repaired = 0
    for job in rt.call(_stale_jobs(rt)):
        job_id = job["id"]
        chunks = rt.call(chunks_db.list_chunks(rt.pool, job_id))
        pending = [c for c in chunks if c["state"] == "PENDING"]
        ctx = JobContext(rt, job_id)
        if job["deriving"]:
            step, waiting = "derive", [job["pending_message_id"]]
        elif job["state"] == JobState.QUEUED or not chunks or job["stage"] in _PREPARE_STAGES:
            # Until prepare has sent the chunks, its own message is what the job waits on.
            step, waiting = "prepare", [job["pending_message_id"]]
        elif pending:
            step, waiting = "chunks", [c["message_id"] for c in pending]
        else:
            step, waiting = "merge", [job["pending_message_id"]]
        ids = [m for m in waiting if m]
        present = jq.pending_message_ids(ids)
        if ids and len(present) == len(ids):
            continue
        log.warning(
            "re-sending lost broker messages",
            job_id=str(job_id),
            step=step,
            missing=len(waiting) - len(present),
        )
        if step == "prepare":
            stages.send_job_message(ctx, queue.PREPARE_JOB)
        elif step == "derive":
            stages.send_job_message(ctx, queue.DERIVE_JOB)
        elif step == "chunks":
            stages.enqueue_chunks(
                ctx, [c["idx"] for c in pending if c["message_id"] not in present]
            )
        else:
            stages.enqueue_merge(ctx)
        repaired += 1
    return repaired


async def _take_lock(rt: Runtime, interval_s: float) -> bool:
    return bool(await rt.redis.set(_LOCK_KEY, "1", nx=True, px=int(interval_s * 900)))


class Reconciler(Periodic):
    """Runs `reconcile_once` periodically in every worker process.

    A Redis lock lets only one process sweep per interval, however many
    workers run.
    """

    name = "reconciler"

    def interval_s(self, rt: Runtime) -> float:
        return rt.settings.reconcile_interval_s

    def tick(self, rt: Runtime) -> None:
        if rt.call(_take_lock(rt, self.interval_s(rt))):
            reconcile_once(rt)
