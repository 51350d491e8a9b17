"""Queries on `job_costs`: what each stage of each job consumed, priced."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg

from reelscribe.db import usage as usage_db


async def record_cost(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    stage: str,
    owner: str,
    *,
    audio_minutes: float = 0.0,
    cpu_seconds: float = 0.0,
    tokens: int = 0,
    cost_usd: float,
) -> None:
    """Set a stage's cost (a retried stage replaces its earlier row)."""
    await conn.execute(
        "INSERT INTO job_costs (job_id, stage, owner, audio_minutes, cpu_seconds, tokens,"
        " cost_usd) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id, stage) DO UPDATE"
        " SET audio_minutes = EXCLUDED.audio_minutes, cpu_seconds = EXCLUDED.cpu_seconds,"
        " tokens = EXCLUDED.tokens, cost_usd = EXCLUDED.cost_usd",
        job_id,
        stage,
        owner,
        audio_minutes,
        cpu_seconds,
        tokens,
        cost_usd,
    )


async def add_cost(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    stage: str,
    owner: str,
    *,
    cpu_seconds: float = 0.0,
    tokens: int = 0,
    cost_usd: float,
) -> None:
    """Add to a stage's cost (stages that run once per chunk add up)."""
    await conn.execute(
        "INSERT INTO job_costs (job_id, stage, owner, cpu_seconds, tokens, cost_usd)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, stage) DO UPDATE"
        " SET cpu_seconds = job_costs.cpu_seconds + EXCLUDED.cpu_seconds,"
        " tokens = job_costs.tokens + EXCLUDED.tokens,"
        " cost_usd = job_costs.cost_usd + EXCLUDED.cost_usd",
        job_id,
        stage,
        owner,
        cpu_seconds,
        tokens,
        cost_usd,
    )


async def daily_costs(
    conn: asyncpg.Connection,
    owner: str | None,
    first: date,
    last: date,
    *,
    per_audio_minute_usd: float,
) -> list[asyncpg.Record]:
    """Per-day totals for one owner (or everyone), oldest first.

    Audio minutes come from the usage ledger (`reelscribe.db.usage`), the same
    numbers `GetUsage` shows, and are priced here; CPU and tokens from `job_costs`.
    """
    return list(
        await conn.fetch(
            "WITH c AS (SELECT day, sum(cpu_seconds) AS cpu_seconds, sum(tokens) AS tokens,"
            " sum(cost_usd) AS cost_usd FROM job_costs"
            " WHERE ($1::text IS NULL OR owner = $1) AND day BETWEEN $2 AND $3 GROUP BY day),"
            f" a AS ({usage_db.daily_minutes_sql('$1', '$2', '$3')})"
            " SELECT day, coalesce(a.audio_minutes, 0) AS audio_minutes,"
            " coalesce(c.cpu_seconds, 0) AS cpu_seconds, coalesce(c.tokens, 0)::bigint AS tokens,"
            " coalesce(c.cost_usd, 0) + coalesce(a.audio_minutes, 0) * $4 AS cost_usd"
            " FROM c FULL JOIN a USING (day) ORDER BY day",
            owner,
            first,
            last,
            per_audio_minute_usd,
        )
    )


async def job_cost(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[asyncpg.Record]:
    """A job's cost per stage."""
    return list(
        await conn.fetch("SELECT * FROM job_costs WHERE job_id = $1 ORDER BY stage", job_id)
    )
