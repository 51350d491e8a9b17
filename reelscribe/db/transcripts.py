"""Queries on transcripts, segments and words."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from reelscribe import blobs, events
from reelscribe.db import events as events_db
from reelscribe.options import JobOptions
from reelscribe.states import JobState, Stage
from reelscribe.v1 import job_pb2

#: Bump when a pipeline change makes old transcripts stale for the cache.
PIPELINE_VERSION = 5
#: Hot transcripts stay in Redis this long after their last write.
CACHE_TTL_S = 30 * 24 * 3600


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
    #: Language of the segment (BCP-47) and the model's probability of it
    #: (0: requested or assumed, not detected).
    language: str = ""
    language_probability: float = 0.0
    #: An English-only model probably heard another language here.
    other_language_suspected: bool = False


@dataclass(frozen=True)
class TranscriptData:
    """A whole transcript, ready to store."""

    language: str
    language_probability: float
    duration_s: float
    model: str
    segments: Sequence[SegmentData]
    #: `language` was assumed (an English-only model), not detected.
    language_assumed: bool = False
    #: Share of the speech time per language, largest first: [(language, share)].
    languages: Sequence[tuple[str, float]] = ()
    #: Job warnings ({"code", "message"}) stored with the transcript.
    warnings: Sequence[dict[str, str]] = ()

    @property
    def text(self) -> str:
        """The segments' text joined with spaces."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def cache_key(owner: str, media_sha256: str, options: JobOptions) -> str:
    """Identity of a transcription: same owner, content, model and options.

    Scoped to the owner: reusing another user's result would reveal that they
    uploaded the same file. The material (and so every stored key) is the
    same as when options were read from their JSON.
    """
    material = json.dumps(
        {
            "owner": owner,
            "sha256": media_sha256,
            "model": options.model,
            "language": options.language,
            "words": not options.disable_word_timestamps,
            "pipeline": PIPELINE_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def redis_key(owner: str, job_id: uuid.UUID) -> str:
    """Redis key of a job's cached transcript (owner in the key, like blob paths)."""
    return f"reelscribe:transcript:{blobs.owner_prefix(owner)}:{job_id}"


async def invalidate_cache(redis: Any, owner: str, job_id: uuid.UUID) -> None:
    """Drop a job's cached transcript (after it changed or was deleted)."""
    await redis.delete(redis_key(owner, job_id))


async def store_transcript(
    conn: asyncpg.Connection, job_id: uuid.UUID, data: TranscriptData, key: str = ""
) -> None:
    """Replace the job's transcript with `data`.

    Delete-then-insert inside the caller's transaction makes a redelivered
    stage leave exactly the same rows as a single run.
    """
    await conn.execute("DELETE FROM transcripts WHERE job_id = $1", job_id)
    await conn.execute(
        "INSERT INTO transcripts (job_id, language, language_probability, duration_s, text,"
        " model, cache_key, language_assumed, languages)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        job_id,
        data.language,
        data.language_probability,
        data.duration_s,
        data.text,
        data.model,
        key or None,
        data.language_assumed,
        [{"language": lang, "share": share} for lang, share in data.languages],
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
            "language",
            "language_probability",
            "other_language_suspected",
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
                s.language,
                s.language_probability,
                s.other_language_suspected,
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


class _Rollback(Exception):
    """Undo a transcript write: the job was cancelled meanwhile."""


class AlreadyStored:
    """What `store_and_succeed` returns when another merge stored the transcript first."""


async def store_and_succeed(
    pool: asyncpg.Pool,
    job_id: uuid.UUID,
    data: TranscriptData,
    key: str,
    index: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    *,
    succeed: bool = True,
    progress: float = 1.0,
) -> events.RecordedEvent | AlreadyStored | None:
    """Store the transcript and end the job SUCCEEDED in one transaction.

    With `succeed` False the job stays RUNNING (later stages will end it) and
    the event only reports the transcript, with the job's `progress` so far.
    Returns None (and stores nothing) if the job was cancelled meanwhile, and
    `AlreadyStored` if a concurrent merge of the same job stored its
    transcript first.
    """
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                # One merge at a time per job; the second finds the first's transcript.
                await conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", job_id)
                if await has_transcript(conn, job_id):
                    return AlreadyStored()
                await store_transcript(conn, job_id, data, key)
                if index is not None:
                    await index(conn)  # searchable the moment it SUCCEEDED
                # Per-chunk results are merged now; keep only the regions.
                await conn.execute("DELETE FROM chunk_segments WHERE job_id = $1", job_id)
                if succeed:
                    kind = job_pb2.JOB_EVENT_KIND_STATE_CHANGED
                    fields: dict[str, Any] = {
                        "state": JobState.SUCCEEDED,
                        "stage": Stage.FINALIZE,
                        "progress": 1.0,
                        "end_time": events.NOW,
                    }
                else:
                    kind = job_pb2.JOB_EVENT_KIND_STAGE_FINISHED
                    fields = {"progress": progress}
                if data.warnings:
                    fields["warnings"] = list(data.warnings)
                recorded = await events_db.append_event(
                    conn,
                    job_id,
                    kind=kind,
                    set_fields=fields,
                    require_states=(JobState.RUNNING,),
                    require_not_cancel_requested=True,
                    stage_progress=1.0,
                    message=f"transcript ready: {len(data.segments)} segments",
                )
                if recorded is None:
                    raise _Rollback()
                return recorded
        except _Rollback:
            return None


async def has_transcript(conn: asyncpg.Connection, job_id: uuid.UUID) -> bool:
    """Whether the job has a transcript."""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM transcripts WHERE job_id = $1)", job_id)
    )


async def find_cached(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    """A finished job whose transcript has this cache key."""
    return await conn.fetchrow(
        "SELECT t.job_id FROM transcripts t JOIN jobs j ON j.id = t.job_id"
        " WHERE t.cache_key = $1 AND j.state = 'SUCCEEDED' ORDER BY t.create_time DESC LIMIT 1",
        key,
    )


async def copy_transcript(conn: asyncpg.Connection, source: uuid.UUID, target: uuid.UUID) -> None:
    """Duplicate a transcript (with segments, words and speech regions) onto another job."""
    await conn.execute("DELETE FROM transcripts WHERE job_id = $1", target)
    await conn.execute(
        "INSERT INTO transcripts (job_id, language, language_probability, duration_s, text,"
        " model, cache_key, language_assumed, languages) SELECT $2::uuid, language,"
        " language_probability, duration_s, text, model, cache_key, language_assumed, languages"
        " FROM transcripts WHERE job_id = $1",
        source,
        target,
    )
    await conn.execute(
        "INSERT INTO segments (job_id, idx, start_s, end_s, text, confidence, avg_logprob,"
        " no_speech_prob, low_confidence, suspected_hallucination, language,"
        " language_probability, other_language_suspected) SELECT $2::uuid, idx, start_s,"
        " end_s, text, confidence, avg_logprob, no_speech_prob, low_confidence,"
        " suspected_hallucination, language, language_probability, other_language_suspected"
        " FROM segments WHERE job_id = $1",
        source,
        target,
    )
    await conn.execute(
        "INSERT INTO words SELECT $2::uuid, segment_idx, idx, start_s, end_s, text, probability"
        " FROM words WHERE job_id = $1",
        source,
        target,
    )
    await conn.execute(
        "INSERT INTO speech_regions SELECT $2::uuid, idx, start_s, end_s, is_speech"
        " FROM speech_regions WHERE job_id = $1",
        source,
        target,
    )
