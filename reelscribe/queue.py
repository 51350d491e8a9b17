"""Names of the pipeline's Dramatiq actors and a way to enqueue them.

The server enqueues by actor name through a broker it builds itself, so it
never imports the worker code; the workers declare actors with these names.
"""

from __future__ import annotations

import asyncio
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import trace

from reelscribe import tracing

#: Claims a job, decodes its audio, finds speech and plans chunks.
PREPARE_JOB = "prepare_job"
#: Transcribes one chunk of a job.
TRANSCRIBE_CHUNK = "transcribe_chunk"
#: Joins the chunks into the transcript and finishes the job.
MERGE_JOB = "merge_job"
#: Runs the stages after transcription (analysis, highlights, clips, ...).
DERIVE_JOB = "derive_job"

#: The pipeline stage each actor runs (metric labels, span and log fields).
STAGES = {
    PREPARE_JOB: "prepare",
    TRANSCRIBE_CHUNK: "transcribe",
    MERGE_JOB: "merge",
    DERIVE_JOB: "derive",
}

#: Stages of jobs already started go to a queue of their own (the job queue's
#: name plus this suffix), and their actors have a higher priority than
#: `prepare_job`: a worker finishes the jobs it started before it starts new
#: ones, so under load jobs complete one after another instead of all at the
#: end. (Dramatiq orders the messages a worker has fetched by actor priority.)
CONTINUE_SUFFIX = "-next"
_CONTINUATIONS = frozenset({TRANSCRIBE_CHUNK, MERGE_JOB, DERIVE_JOB})


def queue_for(queue_name: str, actor_name: str) -> str:
    """The queue `actor_name`'s messages go to, for the job queue `queue_name`."""
    return queue_name + CONTINUE_SUFFIX if actor_name in _CONTINUATIONS else queue_name


_tracer = tracing.tracer(__name__)


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
        self._queues = (queue_name, queue_name + CONTINUE_SUFFIX)
        for name in self._queues:
            broker.declare_queue(name)

    def message(self, actor_name: str, job_id: uuid.UUID, *args: int) -> dramatiq.Message[None]:
        """A message for `actor_name` about `job_id` (plus extra int arguments).

        It carries the current trace context, so the stage that runs it joins
        the trace of whatever built it (the CreateJob call, the previous stage).
        """
        return dramatiq.Message(
            queue_name=queue_for(self._queue_name, actor_name),
            actor_name=actor_name,
            args=(str(job_id), *args),
            kwargs={},
            options=tracing.inject_into_options({}),
        )

    def enqueue_sync(self, message: dramatiq.Message[None]) -> str:
        """Send `message` (blocking); returns the id the broker stores it under.

        That is not `message.message_id`: the Redis broker gives every enqueue
        an id of its own (`redis_message_id`), so a retry is a new entry. Only
        this id tells later whether the broker still holds the message.
        """
        with _tracer.start_as_current_span(
            f"enqueue {message.actor_name}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "reelscribe.job_id": str(message.args[0]) if message.args else "",
            },
        ):
            enqueued = self._broker.enqueue(message)
        return str(enqueued.options.get("redis_message_id", message.message_id))

    async def enqueue(self, actor_name: str, job_id: uuid.UUID, *args: int) -> str:
        """Send one message; runs the blocking Redis call in a thread. Returns its broker id."""
        message = self.message(actor_name, job_id, *args)
        return await asyncio.to_thread(self.enqueue_sync, message)

    def depth(self) -> dict[str, int]:
        """Messages waiting in the broker (blocking Redis calls): `ready` to be
        taken, `delayed` (retries waiting for their backoff, not yet taken by a
        worker) and `dead` (given up, kept for inspection); both queues summed."""
        redis = getattr(self._broker, "client", None)
        if redis is None:
            return {}
        namespace = getattr(self._broker, "namespace", "dramatiq")
        with redis.pipeline(transaction=False) as pipe:
            for name in self._queues:
                key = f"{namespace}:{name}"
                pipe.llen(key)
                pipe.llen(f"{key}.DQ")
                pipe.zcard(f"{key}.XQ")
            counts = pipe.execute()
        return {
            state: sum(int(n) for n in counts[i::3])
            for i, state in enumerate(("ready", "delayed", "dead"))
        }

    def pending_message_ids(self, message_ids: list[str]) -> set[str]:
        """Which of `message_ids` (broker ids from `enqueue_sync`) the broker still holds:
        queued, delayed or in flight."""
        redis = getattr(self._broker, "client", None)
        if redis is None or not message_ids:
            return set(message_ids)
        namespace = getattr(self._broker, "namespace", "dramatiq")
        found: set[str] = set()
        for key in (
            f"{namespace}:{name}{suffix}"
            for name in self._queues
            for suffix in (".msgs", ".DQ.msgs")
        ):
            present = redis.hmget(key, message_ids)
            found |= {mid for mid, raw in zip(message_ids, present, strict=True) if raw}
        return found
