"""Names of the pipeline's Dramatiq actors and a way to enqueue them.

The server enqueues by actor name through a broker it builds itself, so it
never imports the worker code; the workers declare actors with these names.
This module speaks Dramatiq's public API only; what it needs to know of the
Redis broker's insides lives in `reelscribe.broker_redis`. A broker that
cannot be reached is reported as `Unavailable` (raised from the broker's error).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from opentelemetry import trace

from reelscribe import broker_redis, tracing
from reelscribe.errors import Unavailable

#: Claims a job, decodes its audio, finds speech and plans chunks.
PREPARE_JOB = "prepare_job"
#: The same for a job whose media fits one chunk, in a lane of its own.
PREPARE_SHORT_JOB = "prepare_short_job"
#: Transcribes one chunk of a job.
TRANSCRIBE_CHUNK = "transcribe_chunk"
#: Joins the chunks into the transcript and finishes the job.
MERGE_JOB = "merge_job"
#: Runs the stages after transcription (analysis, highlights, clips, ...).
DERIVE_JOB = "derive_job"

#: The pipeline stage each actor runs (metric labels, span and log fields).
STAGES = {
    PREPARE_JOB: "prepare",
    # One message for the whole short job (its chunk and merge, run in place,
    # are observed as `transcribe` and `merge` too).
    PREPARE_SHORT_JOB: "short_job",
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
#: Short jobs (media that fits one chunk: seconds of work in all) go to a queue
#: of their own, whose actor runs before any other: shortest job first, so a
#: 5-second clip never waits behind the chunks of someone's two-hour video.
#: Each is bounded (one chunk of audio), so long jobs still move between them.
SHORT_SUFFIX = "-short"

#: Dramatiq priority of each actor: lower runs first among fetched messages.
PRIORITIES = {PREPARE_SHORT_JOB: 0, TRANSCRIBE_CHUNK: 10, MERGE_JOB: 10, DERIVE_JOB: 10}
#: Priority of new (not short) jobs: after the stages of started ones.
NEW_JOB_PRIORITY = 20


def queue_names(queue_name: str) -> tuple[str, str, str]:
    """Every queue of the job queue `queue_name`: new jobs, started jobs' stages, short jobs."""
    return (queue_name, queue_name + CONTINUE_SUFFIX, queue_name + SHORT_SUFFIX)


def queue_for(queue_name: str, actor_name: str) -> str:
    """The queue `actor_name`'s messages go to, for the job queue `queue_name`."""
    if actor_name == PREPARE_SHORT_JOB:
        return queue_name + SHORT_SUFFIX
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


@contextmanager
def _broker_errors() -> Iterator[None]:
    """Report a broker that cannot be reached as `Unavailable`."""
    try:
        yield
    except broker_redis.CONNECTION_ERRORS as exc:
        raise Unavailable("the work queue is unavailable; retry shortly") from exc


class JobQueue:
    """Enqueues pipeline messages from asyncio code."""

    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self._broker = broker
        self._queue_name = queue_name
        self._queues = queue_names(queue_name)
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
        """Send `message` (blocking); returns the id the broker stores it under
        (see `broker_redis.message_id`: not `message.message_id`)."""
        with (
            _tracer.start_as_current_span(
                f"enqueue {message.actor_name}",
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "dramatiq",
                    "messaging.destination.name": message.queue_name,
                    "messaging.message.id": message.message_id,
                    "reelscribe.job_id": str(message.args[0]) if message.args else "",
                },
            ),
            _broker_errors(),
        ):
            enqueued = self._broker.enqueue(message)
        return broker_redis.message_id(enqueued)

    async def enqueue(self, actor_name: str, job_id: uuid.UUID, *args: int) -> str:
        """Send one message; runs the blocking Redis call in a thread. Returns its broker id."""
        message = self.message(actor_name, job_id, *args)
        return await asyncio.to_thread(self.enqueue_sync, message)

    def depth(self) -> dict[str, int]:
        """Messages waiting in the broker (blocking Redis calls): `ready` to be
        taken, `delayed` (retries waiting for their backoff, not yet taken by a
        worker) and `dead` (given up, kept for inspection); both queues summed."""
        with _broker_errors():
            return broker_redis.depth(self._broker, self._queues)

    def pending_message_ids(self, message_ids: list[str]) -> set[str]:
        """Which of `message_ids` (broker ids from `enqueue_sync`) the broker still holds:
        queued, delayed or in flight."""
        with _broker_errors():
            return broker_redis.held_message_ids(self._broker, self._queues, message_ids)
