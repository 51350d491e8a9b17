"""The per-job event log in Postgres: append (with the job's change), cancel, read.

`append_event` updates the job row, takes the next sequence number and
stores the serialized `JobEvent` (and its webhook delivery, if the job has
a callback) in one transaction, so the log and the job never disagree.
Fanning events out through Redis is `reelscribe.events`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from google.protobuf import duration_pb2, json_format

from reelscribe import convert
from reelscribe.db import usage as usage_db
from reelscribe.db import webhooks as webhooks_db
from reelscribe.events import NOW, RecordedEvent, SqlNow
from reelscribe.options import JobOptions
from reelscribe.states import ACTIVE, TERMINAL, JobState
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
        "warnings",
    }
)


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

    A `progress` in `set_fields` only ever raises the job's progress.
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
        elif column == "progress":
            # A job's progress never goes back: not when stages report out of
            # order, not when a re-run after a crash starts its stages again.
            args.append(value)
            assignments.append(f"progress = GREATEST(progress, ${len(args)})")
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
        if "state" in fields and row["state"] in TERMINAL:
            # The job ended: its audio minutes are what it transcribed, from now on.
            await usage_db.settle(conn, job_id)
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
        if eta_s is None:
            eta_s = _eta_s(row)
        if eta_s is not None:
            event.eta.CopyFrom(duration_pb2.Duration(seconds=int(eta_s)))
        terminal = row["state"] in TERMINAL and kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED
        # Taking the owner's next number locks its counter row until commit,
        # so owner_seq follows commit order (see WatchJobs).
        owner_seq = await conn.fetchval(
            "INSERT INTO owner_event_counters (owner, last_seq) VALUES ($1, 1)"
            " ON CONFLICT (owner) DO UPDATE SET last_seq = owner_event_counters.last_seq + 1"
            " RETURNING last_seq",
            row["owner"],
        )
        payload = event.SerializeToString()
        await conn.execute(
            "INSERT INTO job_events (job_id, seq, kind, terminal, event, owner, owner_seq)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            job_id,
            row["last_event_seq"],
            job_pb2.JobEventKind.Name(kind),
            terminal,
            payload,
            row["owner"],
            owner_seq,
        )
        await _queue_webhook(conn, row, event, terminal)
    return RecordedEvent(
        job_id=job_id,
        owner=row["owner"],
        seq=row["last_event_seq"],
        owner_seq=owner_seq,
        terminal=terminal,
        event=event,
    )


def _eta_s(row: Any) -> float | None:
    """Time left, extrapolated from progress so far (None when unknown)."""
    progress, started = float(row["progress"]), row["start_time"]
    if row["state"] != JobState.RUNNING or started is None or not 0.02 <= progress < 1.0:
        return None
    elapsed_s = (datetime.now(UTC) - started).total_seconds()
    return max(0.0, elapsed_s * (1.0 - progress) / progress)


_WEBHOOK_STAGE_KINDS = (
    job_pb2.JOB_EVENT_KIND_STAGE_STARTED,
    job_pb2.JOB_EVENT_KIND_STAGE_FINISHED,
)


async def _queue_webhook(
    conn: asyncpg.Connection, row: Any, event: job_pb2.JobEvent, terminal: bool
) -> None:
    """Put the event in the webhook outbox, in the event's own transaction."""
    options = JobOptions.from_json(row["options"])
    if not options.callback_uri:
        return
    if not (terminal or (options.callback_stage_events and event.kind in _WEBHOOK_STAGE_KINDS)):
        return
    body = json_format.MessageToJson(event, indent=None, sort_keys=True).encode()
    await webhooks_db.add_delivery(conn, row["id"], event.seq, options.callback_uri, body)


async def cancel(conn: asyncpg.Connection, job_id: uuid.UUID) -> RecordedEvent | None:
    """End a queued or running job CANCELLED (None if it had already ended).

    The one definition of a cancelled job, used by the server (CancelJob) and
    by workers that find a job cancelled at a checkpoint.
    """
    return await append_event(
        conn,
        job_id,
        kind=job_pb2.JOB_EVENT_KIND_STATE_CHANGED,
        set_fields={
            "state": JobState.CANCELLED,
            "cancel_requested": True,
            "end_time": NOW,
            "error_reason": "CANCELLED",
            "error_message": "cancelled by owner",
        },
        require_states=ACTIVE,
        message="cancelled",
    )


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


async def read_owner_events(
    conn: asyncpg.Connection, owner: str, *, after: int, limit: int = 500
) -> list[tuple[int, job_pb2.JobEvent]]:
    """The owner's logged events after position `after`, in order."""
    rows = await conn.fetch(
        "SELECT owner_seq, event FROM job_events WHERE owner = $1 AND owner_seq > $2"
        " ORDER BY owner_seq LIMIT $3",
        owner,
        after,
        limit,
    )
    return [(r["owner_seq"], job_pb2.JobEvent.FromString(r["event"])) for r in rows]


async def last_owner_seq(conn: asyncpg.Connection, owner: str) -> int:
    """The owner's latest position (0 before any event)."""
    value = await conn.fetchval("SELECT last_seq FROM owner_event_counters WHERE owner = $1", owner)
    return int(value or 0)
