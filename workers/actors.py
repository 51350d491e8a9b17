"""Dramatiq actors, one per pipeline stage. Import this module to run a worker.

Time limits and retry policy are explicit per actor. Retries are a second line
of defence: the pipeline records each attempt in Postgres and fails a job for
good after `max_job_attempts`, so a poison file cannot loop forever.
"""

from __future__ import annotations

import uuid

import dramatiq

from reelscribe import logs, queue
from reelscribe.config import get_settings
from workers.broker import setup_broker
from workers.pipeline import JobRun
from workers.runtime import get_runtime

logs.configure()
setup_broker()
_settings = get_settings()


@dramatiq.actor(
    actor_name=queue.TRANSCRIBE_JOB,
    queue_name=_settings.queue_name,
    time_limit=int(_settings.stage_time_limit_s * 1000),
    # One more than the attempts the pipeline allows, so the pipeline (which
    # can record the reason) is the one that gives up.
    max_retries=_settings.max_job_attempts + 1,
    min_backoff=1_000,
    max_backoff=30_000,
)
def transcribe_job(job_id: str) -> None:
    """Decode, transcribe and store one job's media."""
    JobRun(get_runtime(), uuid.UUID(job_id)).run()
