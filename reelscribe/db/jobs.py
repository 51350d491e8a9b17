"""Queries on the `jobs` table. Every read is scoped to an owner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from reelscribe import events
from reelscribe.auth import Principal
from reelscribe.db import events as events_db
from reelscribe.errors import NotFound
from reelscribe.options import JobOptions
from reelscribe.states import ACTIVE
from reelscribe.v1 import job_pb2


async def get_job(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, owner: str | None
) -> asyncpg.Record | None:
    """The job, if it exists and belongs to `owner` (None: any owner, for admins)."""
    if owner is None:
        return await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    return await conn.fetchrow("SELECT * FROM jobs WHERE id = $1 AND owner = $2", job_id, owner)


async def get_visible_job(
    conn: asyncpg.Connection, job_id: uuid.UUID, principal: Principal, name: str
) -> asyncpg.Record:
    """The job if `principal` may see it (its owner, or an admin); NOT_FOUND otherwise.

    The same answer whether the job is missing or someone else's, so names
    reveal nothing.
    """
    row = await get_job(conn, job_id, owner=None if principal.is_admin else principal.subject)
    if row is None:
        raise NotFound(f"{name} not found", reason="JOB_NOT_FOUND")
    return row


async def find_by_request_id(
    conn: asyncpg.Connection, owner: str, request_id: str
) -> asyncpg.Record | None:
    """The job an earlier `CreateJob` with this request id created."""
    return await conn.fetchrow(
        "SELECT * FROM jobs WHERE owner = $1 AND request_id = $2", owner, request_id
    )


async def insert_job(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID,
    owner: str,
    request_id: str | None,
    request_hash: str,
    media_id: uuid.UUID | None,
    source_uri: str | None,
    parent_id: uuid.UUID | None,
    options: JobOptions,
    labels: dict[str, str],
    pending_message_id: str | None,
    media_duration_s: float | None = None,
) -> tuple[asyncpg.Record, events.RecordedEvent] | None:
    """Insert a QUEUED job and its first event.

    Returns None when another call with the same (owner, request_id) won the
    race; the caller then reads that job instead.
    """
    async with conn.transaction():
        inserted = await conn.fetchval(
            """
            INSERT INTO jobs (id, owner, request_id, request_hash, media_id, source_uri,
                              parent_id, options, labels, state, stage, message,
                              pending_message_id, media_duration_s)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'QUEUED', 'QUEUED', 'queued', $10, $11)
            ON CONFLICT (owner, request_id) WHERE request_id IS NOT NULL DO NOTHING
            RETURNING id
            """,
            job_id,
            owner,
            request_id,
            request_hash,
            media_id,
            source_uri,
            parent_id,
            options.to_json(),
            labels,
            pending_message_id,
            media_duration_s,
        )
        if inserted is None:
            return None
        recorded = await events_db.append_event(
            conn, job_id, kind=job_pb2.JOB_EVENT_KIND_STATE_CHANGED, message="queued"
        )
        assert recorded is not None
        row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row is not None
    return row, recorded


async def delete_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Remove a job row (events and transcript cascade)."""
    await conn.execute("DELETE FROM jobs WHERE id = $1", job_id)


async def list_jobs(
    conn: asyncpg.Connection,
    *,
    owner: str | None,
    job_states: Sequence[str],
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    """A page of jobs, newest first, continuing after the keyset `after`."""
    clauses: list[str] = []
    args: list[Any] = []
    if owner is not None:
        args.append(owner)
        clauses.append(f"owner = ${len(args)}")
    if job_states:
        args.append(list(job_states))
        clauses.append(f"state = ANY(${len(args)}::text[])")
    if after is not None:
        args.extend(after)
        clauses.append(f"(create_time, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return await conn.fetch(
        f"SELECT * FROM jobs {where} ORDER BY create_time DESC, id DESC LIMIT ${len(args)}",
        *args,
    )


async def active_jobs(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Jobs that are queued or running, oldest first."""
    return await conn.fetch(
        "SELECT * FROM jobs WHERE state = ANY($1::text[]) ORDER BY create_time",
        list(ACTIVE),
    )


async def set_cache_hit(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Mark a job as reusing a cached transcript."""
    await conn.execute("UPDATE jobs SET cache_hit = true WHERE id = $1", job_id)


async def media_duration_s(conn: asyncpg.Connection, job_id: uuid.UUID) -> float | None:
    """How long the job's media lasts, once known."""
    value = await conn.fetchval("SELECT media_duration_s FROM jobs WHERE id = $1", job_id)
    return None if value is None else float(value)


async def warnings(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[dict[str, str]]:
    """The job's warnings about its result ({"code", "message"} each)."""
    return list(await conn.fetchval("SELECT warnings FROM jobs WHERE id = $1", job_id) or [])


async def record_enqueued(
    conn: asyncpg.Connection, job_id: uuid.UUID, message_id: str, queue: str
) -> None:
    """Record the queue a new job was sent to, and (while it is still QUEUED)
    the broker id of the message it waits on."""
    await conn.execute(
        "UPDATE jobs SET queue = $3, pending_message_id = CASE WHEN state = 'QUEUED'"
        " THEN $2 ELSE pending_message_id END WHERE id = $1",
        job_id,
        message_id,
        queue,
    )


async def set_pending_message(
    conn: asyncpg.Connection, job_id: uuid.UUID, message_id: str | None
) -> None:
    """The broker id of the single message the job waits on (None: it waits on
    its chunks' messages instead)."""
    await conn.execute("UPDATE jobs SET pending_message_id = $2 WHERE id = $1", job_id, message_id)


async def set_source_page(
    conn: asyncpg.Connection, job_id: uuid.UUID, page: dict[str, Any]
) -> None:
    """Keep what the job's source web page said about its media (`reelscribe.pages`)."""
    await conn.execute("UPDATE jobs SET source_page = $2 WHERE id = $1", job_id, page)


async def is_stopping(conn: asyncpg.Connection, job_id: uuid.UUID) -> bool:
    """Whether a worker should stop: cancel asked, the job no longer RUNNING, or gone."""
    value = await conn.fetchval(
        "SELECT cancel_requested OR state <> 'RUNNING' FROM jobs WHERE id = $1", job_id
    )
    return value is None or bool(value)


async def state_of(conn: asyncpg.Connection, job_id: uuid.UUID) -> str | None:
    """The job's state (None when it does not exist)."""
    value = await conn.fetchval("SELECT state FROM jobs WHERE id = $1", job_id)
    return None if value is None else str(value)


async def states_of(conn: asyncpg.Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The states of those of `job_ids` that exist."""
    rows = await conn.fetch("SELECT id, state FROM jobs WHERE id = ANY($1::uuid[])", job_ids)
    return {row["id"]: str(row["state"]) for row in rows}


async def count_by_state(conn: asyncpg.Connection) -> dict[str, float]:
    """How many jobs (of all users) are in each state."""
    rows = await conn.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
    return {str(row["state"]): float(row["n"]) for row in rows}


async def count_jobs(conn: asyncpg.Connection, owner: str) -> int:
    """How many jobs the owner keeps stored (audio minutes are `reelscribe.db.usage`'s)."""
    value = await conn.fetchval("SELECT count(*) FROM jobs WHERE owner = $1", owner)
    return int(value)


async def stale_jobs(
    conn: asyncpg.Connection, *, grace_s: float, queue: str, limit: int = 100
) -> list[asyncpg.Record]:
    """Unfinished jobs of `queue` that have not changed for `grace_s`, oldest first.

    Each row has `id`, `state`, `stage`, `pending_message_id` and `deriving`
    (true once the job is past transcription: a child job, or a transcript exists).
    """
    return list(
        await conn.fetch(
            "SELECT id, state, stage, pending_message_id, parent_id IS NOT NULL"
            " OR EXISTS (SELECT 1 FROM transcripts t WHERE t.job_id = jobs.id) AS deriving"
            " FROM jobs WHERE state = ANY($1::text[])"
            " AND update_time < now() - make_interval(secs => $2)"
            # Only jobs of this queue: another queue's workers own the rest.
            " AND (queue IS NULL OR queue = $3)"
            " ORDER BY update_time LIMIT $4",
            list(ACTIVE),
            grace_s,
            queue,
            limit,
        )
    )
