"""Queries on transcripts, segments and words."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class WordData:
    """A recognized word."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class SegmentData:
    """A recognized segment with its words."""

    start_s: float
    end_s: float
    text: str
    confidence: float
    avg_logprob: float
    no_speech_prob: float
    low_confidence: bool = False
    suspected_hallucination: bool = False
    words: Sequence[WordData] = field(default_factory=tuple)


@dataclass(frozen=True)
class TranscriptData:
    """A whole transcript, ready to store."""

    language: str
    language_probability: float
    duration_s: float
    model: str
    segments: Sequence[SegmentData]

    @property
    def text(self) -> str:
        """The segments' text joined with spaces."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


async def store_transcript(
    conn: asyncpg.Connection, job_id: uuid.UUID, data: TranscriptData
) -> None:
    """Replace the job's transcript with `data`.

    Delete-then-insert inside the caller's transaction makes a redelivered
    stage leave exactly the same rows as a single run.
    """
    await conn.execute("DELETE FROM transcripts WHERE job_id = $1", job_id)
    await conn.execute(
        "INSERT INTO transcripts (job_id, language, language_probability, duration_s, text, model)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        job_id,
        data.language,
        data.language_probability,
        data.duration_s,
        data.text,
        data.model,
    )
    await conn.copy_records_to_table(
        "segments",
        columns=[
            "job_id",
            "idx",
            "start_s",
            "end_s",
            "text",
            "confidence",
            "avg_logprob",
            "no_speech_prob",
            "low_confidence",
            "suspected_hallucination",
        ],
        records=[
            (
                job_id,
                i,
                s.start_s,
                s.end_s,
                s.text,
                s.confidence,
                s.avg_logprob,
                s.no_speech_prob,
                s.low_confidence,
                s.suspected_hallucination,
            )
            for i, s in enumerate(data.segments)
        ],
    )
    await conn.copy_records_to_table(
        "words",
        columns=["job_id", "segment_idx", "idx", "start_s", "end_s", "text", "probability"],
        records=[
            (job_id, i, j, w.start_s, w.end_s, w.text, w.probability)
            for i, s in enumerate(data.segments)
            for j, w in enumerate(s.words)
        ],
    )


async def delete_transcript(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Remove the job's transcript (segments and words cascade)."""
    await conn.execute("DELETE FROM transcripts WHERE job_id = $1", job_id)


async def get_transcript(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, with_words: bool
) -> tuple[asyncpg.Record, list[asyncpg.Record], list[asyncpg.Record]] | None:
    """The transcript row, its segments and (optionally) its words.

    The caller has already checked that the job belongs to the requester.
    """
    row = await conn.fetchrow("SELECT * FROM transcripts WHERE job_id = $1", job_id)
    if row is None:
        return None
    segments = await conn.fetch("SELECT * FROM segments WHERE job_id = $1 ORDER BY idx", job_id)
    words: list[asyncpg.Record] = []
    if with_words:
        words = await conn.fetch(
            "SELECT * FROM words WHERE job_id = $1 ORDER BY segment_idx, idx", job_id
        )
    return row, list(segments), list(words)
