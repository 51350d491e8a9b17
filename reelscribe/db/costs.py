"""Queries on `job_costs`: what each stage of each job consumed, priced."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg


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
    conn: asyncpg.Connection, owner: str | None, first: date, last: date
) -> list[asyncpg.Record]:
    """Per-day totals for one owner (or everyone), oldest first."""
    return list(
        await conn.fetch(
            "SELECT day, sum(audio_minutes) AS audio_minutes, sum(cpu_seconds) AS cpu_seconds,"
            " sum(tokens)::bigint AS tokens, sum(cost_usd) AS cost_usd FROM job_costs"
            " WHERE ($1::text IS NULL OR owner = $1) AND day BETWEEN $2 AND $3"
            " GROUP BY day ORDER BY day",
            owner,
            first,
            last,
        )
    )


async def job_cost(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[asyncpg.Record]:
    """A job's cost per stage."""
    return list(
        await conn.fetch("SELECT * FROM job_costs WHERE job_id = $1 ORDER BY stage", job_id)
    )
