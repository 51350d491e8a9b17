"""The per-job event log: append in Postgres, fan out through Redis.

Every change of a job goes through `append_event`, which updates the job row,
takes the next sequence number and stores the serialized `JobEvent` in one
transaction, so the log and the job never disagree. Publishing to Redis
happens after commit; a lost publish is harmless because watchers fill any
gap from Postgres.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from google.protobuf import duration_pb2

from reelscribe import convert, states
from reelscribe.v1 import job_pb2

#: Columns `append_event` may set; the names are interpolated into SQL.
_SETTABLE = frozenset(
    {
        "state",
        "stage",
        "progress",
        "message",
        "error_reason",
        "error_message",
        "error_stage",
        "cancel_requested",
        "attempts",
        "cache_hit",
        "media_duration_s",
        "start_time",
        "end_time",
    }
)


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


async def append_event(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    *,
    kind: job_pb2.JobEventKind,
    set_fields: dict[str, Any] | None = None,
    require_states: tuple[str, ...] | None = None,
    require_not_cancel_requested: bool = False,
    stage_progress: float = 0.0,
    message: str = "",
    chunk_index: int = 0,
    chunk_count: int = 0,
    eta_s: float | None = None,
) -> RecordedEvent | None:
    """Apply `set_fields` to the job and log one event, atomically.

    Returns None (and changes nothing) when the job does not exist or is not
    in one of `require_states`: this is how racing writers (a cancel and a
    worker finishing) agree on exactly one terminal event.
    """
    fields = dict(set_fields or {})
    if message and "message" not in fields:
        fields["message"] = message
    assignments = ["last_event_seq = last_event_seq + 1", "update_time = now()"]
    args: list[Any] = [job_id]
    for column, value in fields.items():
        if column not in _SETTABLE:
            raise ValueError(f"column {column!r} cannot be set through events")
        if isinstance(value, SqlNow):
            assignments.append(f"{column} = now()")
        else:
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
    where = "id = $1"
    if require_states is not None:
        args.append(list(require_states))
        where += f" AND state = ANY(${len(args)}::text[])"
    if require_not_cancel_requested:
        where += " AND NOT cancel_requested"
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE jobs SET {', '.join(assignments)} WHERE {where} RETURNING *", *args
        )
        if row is None:
            return None
        job = convert.job_to_pb(row)
        event = job_pb2.JobEvent(
            seq=row["last_event_seq"],
            kind=kind,
            job=job,
            stage=job.stage,
            stage_progress=stage_progress,
            message=message or row["message"],
            chunk_index=chunk_index,
            chunk_count=chunk_count,
        )
        event.time.GetCurrentTime()
        if eta_s is not None:
            event.eta.CopyFrom(duration_pb2.Duration(seconds=int(eta_s)))
        terminal = row["state"] in states.TERMINAL and kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED
        await conn.execute(
            "INSERT INTO job_events (job_id, seq, kind, terminal, event)"
            " VALUES ($1, $2, $3, $4, $5)",
            job_id,
            row["last_event_seq"],
            job_pb2.JobEventKind.Name(kind),
            terminal,
            event.SerializeToString(),
        )
    return RecordedEvent(
        job_id=job_id, owner=row["owner"], seq=row["last_event_seq"], terminal=terminal, event=event
    )


async def publish(redis: Publisher, recorded: RecordedEvent) -> None:
    """Fan a committed event out to live watchers."""
    payload = recorded.payload
    await redis.publish(job_channel(recorded.job_id), payload)
    await redis.publish(owner_channel(recorded.owner), payload)


async def read_events(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, after_seq: int, limit: int = 500
) -> list[tuple[job_pb2.JobEvent, bool]]:
    """Logged events after `after_seq`, in order, with their terminal flag."""
    rows = await conn.fetch(
        "SELECT event, terminal FROM job_events WHERE job_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3",
        job_id,
        after_seq,
        limit,
    )
    return [(job_pb2.JobEvent.FromString(r["event"]), r["terminal"]) for r in rows]
