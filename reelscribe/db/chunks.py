"""Queries on speech regions, chunks and per-chunk results."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import asyncpg

from reelscribe.db import usage as usage_db
from reelscribe.speech import Region


async def replace_plan(
    pool: asyncpg.Pool,
    job_id: uuid.UUID,
    regions: list[Region],
    plan: list[tuple[float, float]],
) -> None:
    """Store the job's speech regions and chunk plan, replacing earlier ones."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM speech_regions WHERE job_id = $1", job_id)
        await conn.execute("DELETE FROM chunks WHERE job_id = $1", job_id)
        await conn.copy_records_to_table(
            "speech_regions",
            columns=["job_id", "idx", "start_s", "end_s", "is_speech"],
            records=[(job_id, i, r.start_s, r.end_s, r.is_speech) for i, r in enumerate(regions)],
        )
        await conn.copy_records_to_table(
            "chunks",
            columns=["job_id", "idx", "start_s", "end_s"],
            records=[(job_id, i, s, e) for i, (s, e) in enumerate(plan)],
        )


async def plan_status(pool: asyncpg.Pool, job_id: uuid.UUID) -> tuple[bool, list[int], bool]:
    """(a plan is stored, indexes of its pending chunks, any speech found)."""
    async with pool.acquire() as conn:
        regions = await conn.fetchrow(
            "SELECT count(*) AS n, bool_or(is_speech) AS speech FROM speech_regions"
            " WHERE job_id = $1",
            job_id,
        )
        pending = await conn.fetch(
            "SELECT idx FROM chunks WHERE job_id = $1 AND state = 'PENDING' ORDER BY idx", job_id
        )
    return regions["n"] > 0, [r["idx"] for r in pending], bool(regions["speech"])


async def ready_to_merge(pool: asyncpg.Pool, job_id: uuid.UUID) -> bool:
    """Every chunk is transcribed (or nothing was said at all)."""
    async with pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM chunks WHERE job_id = $1 AND state <> 'DONE')"
                " OR NOT EXISTS (SELECT 1 FROM speech_regions WHERE job_id = $1 AND is_speech)",
                job_id,
            )
        )


async def set_message_id(pool: asyncpg.Pool, job_id: uuid.UUID, idx: int, message_id: str) -> None:
    """Remember which broker message carries a chunk (for the reconciler)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE chunks SET message_id = $3 WHERE job_id = $1 AND idx = $2",
            job_id,
            idx,
            message_id,
        )


async def load_regions(pool: asyncpg.Pool, job_id: uuid.UUID) -> list[Region]:
    """The job's speech and silence regions in time order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT start_s, end_s, is_speech FROM speech_regions WHERE job_id = $1 ORDER BY idx",
            job_id,
        )
    return [Region(r["start_s"], r["end_s"], r["is_speech"]) for r in rows]


async def claim(pool: asyncpg.Pool, job_id: uuid.UUID, idx: int) -> asyncpg.Record | None:
    """Count an attempt at a pending chunk; None if it is done or gone."""
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "UPDATE chunks SET attempts = attempts + 1 WHERE job_id = $1 AND idx = $2"
            " AND state = 'PENDING' RETURNING *",
            job_id,
            idx,
        )


class Completion(NamedTuple):
    """Where a job's transcription stands after one chunk finished."""

    #: Chunks done, and in total.
    done: int
    total: int
    #: Whether this call finished the chunk (False for a duplicate).
    newly: bool
    #: Seconds of audio in the chunks done, and in all chunks.
    done_s: float
    total_s: float

    @property
    def fraction(self) -> float:
        """The share of the audio transcribed (by duration, not by chunk count)."""
        if self.total_s > 0:
            return min(1.0, self.done_s / self.total_s)
        return self.done / self.total if self.total else 1.0


async def complete(
    pool: asyncpg.Pool,
    job_id: uuid.UUID,
    idx: int,
    segments: list[dict[str, Any]],
    language: str,
    language_probability: float,
) -> Completion:
    """Store a chunk's segments and mark it done, atomically.

    Returns how many chunks (and seconds of audio) are done of all. The
    job row is locked so that exactly one finishing chunk sees "all done". The
    chunk's span is counted in the usage ledger in the same transaction, once.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", job_id)
        span_s = await conn.fetchval(
            "UPDATE chunks SET state = 'DONE', language = $3, language_probability = $4"
            " WHERE job_id = $1 AND idx = $2 AND state = 'PENDING' RETURNING end_s - start_s",
            job_id,
            idx,
            language,
            language_probability,
        )
        changed = span_s is not None
        if changed:
            await usage_db.add_transcribed(conn, job_id, float(span_s))
            await conn.execute(
                "DELETE FROM chunk_segments WHERE job_id = $1 AND chunk_idx = $2", job_id, idx
            )
            await conn.executemany(
                "INSERT INTO chunk_segments (job_id, chunk_idx, idx, start_s, end_s, text,"
                " avg_logprob, no_speech_prob, compression_ratio, words, language,"
                " language_probability, other_language_suspected)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                [
                    (
                        job_id,
                        idx,
                        i,
                        s["start_s"],
                        s["end_s"],
                        s["text"],
                        s["avg_logprob"],
                        s["no_speech_prob"],
                        s["compression_ratio"],
                        s["words"],
                        s["language"],
                        s["language_probability"],
                        s["other_language_suspected"],
                    )
                    for i, s in enumerate(segments)
                ],
            )
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE state = 'DONE') AS done, count(*) AS total,"
            " coalesce(sum(end_s - start_s) FILTER (WHERE state = 'DONE'), 0) AS done_s,"
            " coalesce(sum(end_s - start_s), 0) AS total_s"
            " FROM chunks WHERE job_id = $1",
            job_id,
        )
    assert counts is not None
    return Completion(
        int(counts["done"]),
        int(counts["total"]),
        changed,
        float(counts["done_s"]),
        float(counts["total_s"]),
    )


async def load_results(
    pool: asyncpg.Pool, job_id: uuid.UUID
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """All chunks and their segments, in timeline order."""
    async with pool.acquire() as conn:
        chunk_rows = await conn.fetch("SELECT * FROM chunks WHERE job_id = $1 ORDER BY idx", job_id)
        segment_rows = await conn.fetch(
            "SELECT * FROM chunk_segments WHERE job_id = $1 ORDER BY chunk_idx, idx", job_id
        )
    return list(chunk_rows), list(segment_rows)


async def list_chunks(pool: asyncpg.Pool, job_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every chunk of the job (`idx`, `state`, `message_id`), in order."""
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT idx, state, message_id FROM chunks WHERE job_id = $1 ORDER BY idx", job_id
            )
        )


async def delete_chunks(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Remove the job's chunk plan and results."""
    await conn.execute("DELETE FROM chunks WHERE job_id = $1", job_id)
