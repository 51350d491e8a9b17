"""The audio-minute ledger (`audio_usage`): reserve, claim, count, settle, report.

One row per job that transcribes, kept when the job is deleted. A row counts
its reservation (the probed length at creation, then the decoded length)
until the job ends, and from then on what was actually transcribed: the spans
of the chunks that finished. Every check of an owner's minutes happens under
`lock_owner`, so concurrent creations and decodes cannot overspend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

#: Seconds a row counts: its reservation while the job runs (never less than
#: what it transcribed so far), what it transcribed once the job ended.
_COUNTED = (
    "CASE WHEN settle_time IS NULL THEN greatest(reserved_s, transcribed_s) ELSE transcribed_s END"
)
#: Today, as the ledger's days are kept: UTC.
_TODAY = "(now() AT TIME ZONE 'UTC')::date"


async def lock_owner(conn: asyncpg.Connection, owner: str) -> None:
    """Serialize quota decisions of one owner until the transaction ends.

    A transaction-scoped advisory lock: job creation (counting stored jobs and
    minutes, then inserting) and decoding (claiming the decoded length) of one
    owner take turns; other owners never wait.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"reelscribe:owner:{owner}"
    )


async def seconds_today(conn: asyncpg.Connection, owner: str) -> float:
    """Seconds of audio the owner has used or reserved today (UTC)."""
    value = await conn.fetchval(
        f"SELECT coalesce(sum({_COUNTED}), 0) FROM audio_usage WHERE owner = $1 AND day = {_TODAY}",
        owner,
    )
    return float(value)


async def reserve(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID,
    owner: str,
    reserved_s: float,
    allowance_s: float | None,
) -> None:
    """Open the ledger row of a new job that will transcribe (inside its creation)."""
    await conn.execute(
        "INSERT INTO audio_usage (job_id, owner, allowance_s, reserved_s) VALUES ($1, $2, $3, $4)",
        job_id,
        owner,
        allowance_s,
        reserved_s,
    )


async def discard(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Remove the row of a job whose creation was undone (it never existed)."""
    await conn.execute("DELETE FROM audio_usage WHERE job_id = $1", job_id)


async def _others_s(conn: asyncpg.Connection, row: asyncpg.Record) -> float:
    value = await conn.fetchval(
        f"SELECT coalesce(sum({_COUNTED}), 0) FROM audio_usage"
        " WHERE owner = $1 AND day = $2 AND job_id <> $3",
        row["owner"],
        row["day"],
        row["job_id"],
    )
    return float(value)


async def seconds_left(conn: asyncpg.Connection, job_id: uuid.UUID) -> float | None:
    """How much audio the job may still decode: its owner's allowance for the job's
    day less what every other job of that day counts (so the job's own reservation
    is included). None: unlimited, or a job without a ledger row."""
    row = await conn.fetchrow("SELECT * FROM audio_usage WHERE job_id = $1", job_id)
    if row is None or row["allowance_s"] is None:
        return None
    return max(0.0, float(row["allowance_s"]) - await _others_s(conn, row))


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a decoded length."""

    #: The decoded length is now the job's reservation.
    granted: bool
    #: Seconds the owner had left for this job (None: unlimited).
    left_s: float | None


async def claim(conn: asyncpg.Connection, job_id: uuid.UUID, decoded_s: float) -> Claim:
    """Make the decoded length the job's reservation, if the owner's allowance
    still holds it now (other jobs may have reserved since decoding began)."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM audio_usage WHERE job_id = $1", job_id)
        if row is None:  # a job from before the ledger: nothing to claim against
            return Claim(granted=True, left_s=None)
        await lock_owner(conn, row["owner"])
        left_s: float | None = None
        if row["allowance_s"] is not None:
            left_s = max(0.0, float(row["allowance_s"]) - await _others_s(conn, row))
            if decoded_s > left_s + 1e-6:
                return Claim(granted=False, left_s=left_s)
        await conn.execute(
            "UPDATE audio_usage SET reserved_s = $2 WHERE job_id = $1 AND settle_time IS NULL",
            job_id,
            decoded_s,
        )
        return Claim(granted=True, left_s=left_s)


async def add_transcribed(conn: asyncpg.Connection, job_id: uuid.UUID, seconds: float) -> None:
    """Count a finished chunk's span (in the chunk's own transaction; never after
    the job ended: a cancelled job keeps no results, so it is not charged for them)."""
    await conn.execute(
        "UPDATE audio_usage SET transcribed_s = transcribed_s + $2"
        " WHERE job_id = $1 AND settle_time IS NULL",
        job_id,
        seconds,
    )


async def settle(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """The job ended: from now on its row counts only what was transcribed."""
    await conn.execute(
        "UPDATE audio_usage SET settle_time = now() WHERE job_id = $1 AND settle_time IS NULL",
        job_id,
    )


async def job_usage(conn: asyncpg.Connection, job_id: uuid.UUID) -> asyncpg.Record | None:
    """The job's ledger row, with `counted_s` (what it counts now)."""
    return await conn.fetchrow(
        f"SELECT *, {_COUNTED} AS counted_s FROM audio_usage WHERE job_id = $1", job_id
    )


def daily_minutes_sql(owner_param: str, first_param: str, last_param: str) -> str:
    """A query of (day, audio_minutes) per day, for the cost report to join."""
    return (
        f"SELECT day, sum({_COUNTED}) / 60.0 AS audio_minutes FROM audio_usage"
        f" WHERE ({owner_param}::text IS NULL OR owner = {owner_param})"
        f" AND day BETWEEN {first_param} AND {last_param} GROUP BY day"
    )
