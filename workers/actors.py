"""Dramatiq actors, one per pipeline stage. Import this module to run a worker.

Time limits and retry policy are explicit per actor. Retries are a second line
of defence: the stages record attempts in Postgres and fail a job for good
after `max_job_attempts`, so a poison file cannot loop forever even when it
kills the worker (which Dramatiq does not count as a retry).
"""

from __future__ import annotations

# First of all: worker metrics are shared by the worker processes through files,
# which prometheus_client decides when it is first imported (see the module).
from workers import observability  # noqa: F401

# isort: split

import uuid
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from reelscribe import logs, queue
from reelscribe.config import get_settings
from workers import inplace, insights, merge, stages
from workers.boot import check_blob_store, check_models
from workers.broker import setup_broker
from workers.costwatch import CostWatch
from workers.heap import TrimHeap
from workers.idle_models import ReleaseIdleModels
from workers.presence import Presence
from workers.reconciler import Reconciler
from workers.runtime import get_runtime
from workers.scratchsweep import ScratchSweep
from workers.uploadsweep import UploadSweep
from workers.webhooks import WebhookSender

logs.configure()
# Before connecting to anything: a worker without intact models takes no job.
check_models(get_settings())
check_blob_store(get_settings())
_broker = setup_broker()
_broker.add_middleware(Reconciler())
_broker.add_middleware(WebhookSender())
_broker.add_middleware(CostWatch())
_broker.add_middleware(Presence())
_broker.add_middleware(UploadSweep())
_broker.add_middleware(ScratchSweep())
_settings = get_settings()
if _settings.worker_trim_heap:
    _broker.add_middleware(TrimHeap())
if _settings.worker_model_idle_s > 0:
    _broker.add_middleware(ReleaseIdleModels(_settings.worker_model_idle_s))

_COMMON: dict[str, Any] = {
    # One more than the attempts the stages allow, so the stage (which can
    # record the reason) is the one that gives up.
    "max_retries": _settings.max_job_attempts + 1,
    "min_backoff": 500,
    "max_backoff": 15_000,
}


def _retries() -> int:
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


def _queue(actor_name: str) -> dict[str, Any]:
    """Queue and priority: stages of started jobs run before new jobs (see queue.py)."""
    return {
        "queue_name": queue.queue_for(_settings.queue_name, actor_name),
        "priority": queue.PRIORITIES.get(actor_name, queue.NEW_JOB_PRIORITY),
    }


@dramatiq.actor(
    actor_name=queue.PREPARE_JOB,
    time_limit=30 * 60 * 1000,
    **_queue(queue.PREPARE_JOB),
    **_COMMON,
)
def prepare_job(job_id: str) -> None:
    """Claim a job, decode its audio, find speech and fan out chunks (or, when
    its speech fits one chunk, transcribe and merge it right here)."""
    stages.prepare(get_runtime(), uuid.UUID(job_id), inplace.run_single_chunk)


@dramatiq.actor(
    actor_name=queue.PREPARE_SHORT_JOB,
    time_limit=30 * 60 * 1000,
    **_queue(queue.PREPARE_SHORT_JOB),
    **_COMMON,
)
def prepare_short_job(job_id: str) -> None:
    """`prepare_job` for media that fits one chunk, ahead of every other message."""
    stages.prepare(get_runtime(), uuid.UUID(job_id), inplace.run_single_chunk)


@dramatiq.actor(
    actor_name=queue.TRANSCRIBE_CHUNK,
    time_limit=int(_settings.stage_time_limit_s * 1000),
    **_queue(queue.TRANSCRIBE_CHUNK),
    **_COMMON,
)
def transcribe_chunk(job_id: str, idx: int) -> None:
    """Transcribe one chunk of a job."""
    stages.transcribe_chunk(get_runtime(), uuid.UUID(job_id), int(idx))


@dramatiq.actor(
    actor_name=queue.MERGE_JOB, time_limit=10 * 60 * 1000, **_queue(queue.MERGE_JOB), **_COMMON
)
def merge_job(job_id: str) -> None:
    """Join a job's chunks into its transcript and finish it."""
    merge.merge(get_runtime(), uuid.UUID(job_id), _retries())


@dramatiq.actor(
    actor_name=queue.DERIVE_JOB, time_limit=60 * 60 * 1000, **_queue(queue.DERIVE_JOB), **_COMMON
)
def derive_job(job_id: str) -> None:
    """Run a job's stages after transcription (or a child job's, on its parent's transcript)."""
    insights.run(get_runtime(), uuid.UUID(job_id), _retries())
