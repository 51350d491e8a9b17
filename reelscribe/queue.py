"""Names of the pipeline's Dramatiq actors and a way to enqueue them.

The server enqueues by actor name through a broker it builds itself, so it
never imports the worker code; the workers declare actors with these names.
"""

from __future__ import annotations

import asyncio
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker

#: Claims a job, decodes its audio, finds speech and plans chunks.
PREPARE_JOB = "prepare_job"
#: Transcribes one chunk of a job.
TRANSCRIBE_CHUNK = "transcribe_chunk"
#: Joins the chunks into the transcript and finishes the job.
MERGE_JOB = "merge_job"
#: Runs the stages after transcription (analysis, highlights, clips, ...).
DERIVE_JOB = "derive_job"


def make_broker(
    redis_url: str, *, heartbeat_timeout_s: float = 60.0, maintenance_chance: int = 1000
) -> RedisBroker:
    """A Redis broker for `redis_url` (with Dramatiq's default middleware)."""
    return RedisBroker(
        url=redis_url,
        heartbeat_timeout=int(heartbeat_timeout_s * 1000),
        maintenance_chance=maintenance_chance,
    )


class JobQueue:
    """Enqueues pipeline messages from asyncio code."""

    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self._broker = broker
        self._queue_name = queue_name
        broker.declare_queue(queue_name)

    def message(self, actor_name: str, job_id: uuid.UUID, *args: int) -> dramatiq.Message[None]:
        """A message for `actor_name` about `job_id` (plus extra int arguments)."""
        return dramatiq.Message(
            queue_name=self._queue_name,
            actor_name=actor_name,
            args=(str(job_id), *args),
            kwargs={},
            options={},
        )

    def enqueue_sync(self, message: dramatiq.Message[None]) -> str:
        """Send `message` (blocking); returns the id the broker stores it under.

        That is not `message.message_id`: the Redis broker gives every enqueue
        an id of its own (`redis_message_id`), so a retry is a new entry. Only
        this id tells later whether the broker still holds the message.
        """
        enqueued = self._broker.enqueue(message)
        return str(enqueued.options.get("redis_message_id", message.message_id))

    async def enqueue(self, actor_name: str, job_id: uuid.UUID, *args: int) -> str:
        """Send one message; runs the blocking Redis call in a thread. Returns its broker id."""
        message = self.message(actor_name, job_id, *args)
        return await asyncio.to_thread(self.enqueue_sync, message)

    def pending_message_ids(self, message_ids: list[str]) -> set[str]:
        """Which of `message_ids` (broker ids from `enqueue_sync`) the broker still holds:
        queued, delayed or in flight."""
        redis = getattr(self._broker, "client", None)
        if redis is None or not message_ids:
            return set(message_ids)
        namespace = getattr(self._broker, "namespace", "dramatiq")
        found: set[str] = set()
        for key in (
            f"{namespace}:{self._queue_name}.msgs",
            f"{namespace}:{self._queue_name}.DQ.msgs",
        ):
            present = redis.hmget(key, message_ids)
            found |= {mid for mid, raw in zip(message_ids, present, strict=True) if raw}
        return found
