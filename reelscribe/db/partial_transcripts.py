"""Reads a running job's finished chunks: the transcript before the merge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import NamedTuple

import asyncpg


class PartialResults(NamedTuple):
    """What a job's transcription has produced so far."""

    #: The merged transcript is stored (the chunks' own rows are gone or going).
    transcript_stored: bool
    #: Chunks in the job's plan (0 before the plan exists, or when nothing was said).
    chunk_count: int
    #: Chunks finished, whether asked for or not.
    finished_count: int
    #: The finished chunks asked for (`idx`, `start_s`, `end_s`), in order.
    chunks: list[asyncpg.Record]
    #: Their segments (`chunk_idx`, `start_s`, `end_s`, `text`, `words`), in order.
    segments: list[asyncpg.Record]


async def read(
    conn: asyncpg.Connection, job_id: uuid.UUID, indexes: Sequence[int] = ()
) -> PartialResults:
    """The finished chunks (all, or those in `indexes`) with their segments.

    One snapshot: the merge stores the transcript and deletes the chunks'
    segments in one transaction, so a read sees either the chunks or the
    stored transcript, never an empty in-between.
    """
    only = list(indexes) or None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        counts = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE state = 'DONE') AS done,"
            " EXISTS (SELECT 1 FROM transcripts WHERE job_id = $1) AS stored"
            " FROM chunks WHERE job_id = $1",
            job_id,
        )
        chunks = await conn.fetch(
            "SELECT idx, start_s, end_s FROM chunks WHERE job_id = $1 AND state = 'DONE'"
            " AND ($2::int[] IS NULL OR idx = ANY($2::int[])) ORDER BY idx",
            job_id,
            only,
        )
        segments = await conn.fetch(
            "SELECT s.chunk_idx, s.start_s, s.end_s, s.text, s.words FROM chunk_segments s"
            " JOIN chunks c ON c.job_id = s.job_id AND c.idx = s.chunk_idx AND c.state = 'DONE'"
            " WHERE s.job_id = $1 AND ($2::int[] IS NULL OR s.chunk_idx = ANY($2::int[]))"
            " ORDER BY s.chunk_idx, s.idx",
            job_id,
            only,
        )
    assert counts is not None
    return PartialResults(
        bool(counts["stored"]),
        int(counts["total"]),
        int(counts["done"]),
        list(chunks),
        list(segments),
    )
