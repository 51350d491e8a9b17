"""Job events in flight: the Redis channels they fan out on, and what a recorded
event is.

Every change of a job is appended to its Postgres event log first
(`reelscribe.db.events.append_event`, in the same transaction as the change);
publishing to Redis happens after commit. A lost publish is harmless because
watchers fill any gap from the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from reelscribe.v1 import job_pb2, job_service_pb2


class SqlNow:
    """Marker value: set the column to the database's `now()`."""


NOW = SqlNow()


def job_channel(job_id: uuid.UUID) -> str:
    """Redis channel carrying one job's events."""
    return f"reelscribe:events:job:{job_id}"


def owner_channel(owner: str) -> str:
    """Redis channel carrying events of all of one user's jobs."""
    return f"reelscribe:events:owner:{owner}"


@dataclass(frozen=True)
class RecordedEvent:
    """An event that is committed to the log."""

    job_id: uuid.UUID
    owner: str
    seq: int
    #: Position in the owner's stream of all job events (WatchJobs).
    owner_seq: int
    terminal: bool
    event: job_pb2.JobEvent

    @property
    def payload(self) -> bytes:
        """The serialized `JobEvent`."""
        return self.event.SerializeToString()


class Publisher(Protocol):
    """Anything with an async Redis-style `publish` (redis.asyncio.Redis)."""

    def publish(self, channel: str, message: bytes) -> Awaitable[Any]:
        """Publish `message` on `channel`."""


async def publish(redis: Publisher, recorded: RecordedEvent) -> None:
    """Fan a committed event out to live watchers."""
    await redis.publish(job_channel(recorded.job_id), recorded.payload)
    await redis.publish(
        owner_channel(recorded.owner), owner_payload(recorded.owner_seq, recorded.event)
    )


def owner_payload(owner_seq: int, event: job_pb2.JobEvent) -> bytes:
    """The message on an owner channel: the event with its owner position."""
    return job_service_pb2.WatchJobsResponse(event=event, cursor=str(owner_seq)).SerializeToString()
