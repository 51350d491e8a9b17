"""Names of the pipeline's Dramatiq actors and a way to enqueue them.

The server enqueues by actor name through a broker it builds itself, so it
never imports the worker code; the workers declare actors with these names.
"""

from __future__ import annotations

import asyncio
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker

#: Runs a transcription job from media to stored transcript.
TRANSCRIBE_JOB = "transcribe_job"


def make_broker(redis_url: str) -> RedisBroker:
    """A Redis broker for `redis_url` (with Dramatiq's default middleware)."""
    return RedisBroker(url=redis_url)


class JobQueue:
    """Enqueues pipeline messages from asyncio code."""

    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self._broker = broker
        self._queue_name = queue_name
        broker.declare_queue(queue_name)

    async def enqueue(self, actor_name: str, job_id: uuid.UUID) -> None:
        """Send one message for `job_id`; runs the blocking Redis call in a thread."""
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=self._queue_name,
            actor_name=actor_name,
            args=(str(job_id),),
            kwargs={},
            options={},
        )
        await asyncio.to_thread(self._broker.enqueue, message)
