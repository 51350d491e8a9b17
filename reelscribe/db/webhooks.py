"""Queries on the webhook outbox: `webhook_deliveries` and `webhook_attempts`."""

from __future__ import annotations

import uuid

import asyncpg


async def add_delivery(
    conn: asyncpg.Connection, job_id: uuid.UUID, event_seq: int, url: str, body: bytes
) -> None:
    """Put one event in the outbox (once per event), in the caller's transaction."""
    await conn.execute(
        "INSERT INTO webhook_deliveries (job_id, event_seq, url, body) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (job_id, event_seq) DO NOTHING",
        job_id,
        event_seq,
        url,
        body,
    )


async def lease_due(
    conn: asyncpg.Connection, *, lease_s: float, limit: int
) -> list[asyncpg.Record]:
    """Take up to `limit` due deliveries, counting the attempt about to be made.

    Each job's deliveries go out in `event_seq` order, one at a time: only a
    job's earliest pending delivery may be taken, so a later event waits
    until every earlier one is delivered or given up (`FAILED`), retries and
    backoff included. A leased delivery stays pending — holding back its
    job's later ones — and is due again after `lease_s` (its sender may have
    crashed mid-POST); `SKIP LOCKED`, and the re-check of a row leased
    meanwhile, keep concurrent senders apart. So a call leases at most one
    delivery per job.
    """
    return list(
        await conn.fetch(
            "UPDATE webhook_deliveries SET attempts = attempts + 1,"
            " next_attempt_at = now() + make_interval(secs => $1)"
            " WHERE id IN (SELECT d.id FROM webhook_deliveries d WHERE d.state = 'PENDING'"
            " AND d.next_attempt_at <= now()"
            " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.job_id = d.job_id"
            " AND e.state = 'PENDING' AND e.event_seq < d.event_seq)"
            " ORDER BY d.next_attempt_at LIMIT $2"
            " FOR UPDATE OF d SKIP LOCKED) RETURNING *",
            lease_s,
            limit,
        )
    )


async def record_attempt(
    conn: asyncpg.Connection,
    delivery: asyncpg.Record,
    *,
    http_status: int,
    error: str,
    state: str,
    retry_in_s: float,
) -> None:
    """Log one attempt of a leased delivery and move the delivery to `state`
    (`DELIVERED`, `FAILED`, or `PENDING` again in `retry_in_s`)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, http_status, delivered, error)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            delivery["id"],
            delivery["attempts"],
            http_status,
            200 <= http_status < 300,
            error[:500],
        )
        await conn.execute(
            "UPDATE webhook_deliveries SET state = $2,"
            " next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            delivery["id"],
            state,
            retry_in_s,
        )


async def list_attempts(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, after: tuple[int, int], limit: int
) -> list[asyncpg.Record]:
    """A page of the job's delivery attempts in (event_seq, attempt) order, after `after`."""
    return list(
        await conn.fetch(
            "SELECT d.event_seq, a.attempt, a.time, a.http_status, a.delivered, a.error"
            " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            " WHERE d.job_id = $1 AND (d.event_seq, a.attempt) > ($2, $3)"
            " ORDER BY d.event_seq, a.attempt LIMIT $4",
            job_id,
            after[0],
            after[1],
            limit,
        )
    )
