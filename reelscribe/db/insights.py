"""Queries on stored insights: analyses (summaries, translations, romanizations)
and highlights (with their clips)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import asyncpg

from reelscribe.insights.base import Analysis, ChapterData, Importance, Summary, Usage
from reelscribe.insights.highlights import HighlightPlan

#: `kind` of the row holding summaries, chapters, importance and topics.
ANALYSIS = "analysis"
#: `kind` of the row holding the Cantonese romanization.
ROMANIZATION = "romanization"


def translation_kind(language: str) -> str:
    """`kind` of a translation into `language`."""
    return f"translation:{language}"


def analysis_to_json(analysis: Analysis) -> dict[str, Any]:
    """A JSON-ready dict of an analysis."""
    return asdict(analysis)


def analysis_from_json(payload: dict[str, Any]) -> Analysis:
    """The analysis stored by `analysis_to_json`."""
    return Analysis(
        summaries=tuple(
            Summary(s["format"], s["text"], tuple(s.get("bullets") or ()))
            for s in payload["summaries"]
        ),
        chapters=tuple(ChapterData(**c) for c in payload["chapters"]),
        importance=tuple(Importance(**i) for i in payload["importance"]),
        topics=tuple(payload.get("topics") or ()),
        usage=Usage(**payload.get("usage", {})),
    )


async def get(
    conn: asyncpg.Connection, job_id: uuid.UUID, kind: str, provider: str
) -> dict[str, Any] | None:
    """The stored payload, unless it expired."""
    raw = await conn.fetchval(
        "SELECT payload FROM analyses WHERE job_id = $1 AND kind = $2 AND provider = $3"
        " AND (expire_time IS NULL OR expire_time > now())",
        job_id,
        kind,
        provider,
    )
    return None if raw is None else dict(json.loads(raw))


async def get_any(
    conn: asyncpg.Connection, job_id: uuid.UUID, kind: str
) -> tuple[str, dict[str, Any]] | None:
    """The newest unexpired payload of `kind` from any provider, with the provider."""
    row = await conn.fetchrow(
        "SELECT provider, payload FROM analyses WHERE job_id = $1 AND kind = $2"
        " AND (expire_time IS NULL OR expire_time > now()) ORDER BY create_time DESC LIMIT 1",
        job_id,
        kind,
    )
    return None if row is None else (row["provider"], dict(json.loads(row["payload"])))


async def find_for_transcript(
    conn: asyncpg.Connection, job_id: uuid.UUID, kind: str, provider: str, max_age_s: float
) -> dict[str, Any] | None:
    """A payload for this job's transcript: the job's own (unless expired), or one
    made for the same transcript (a parent, a cache hit) less than `max_age_s` ago."""
    raw = await conn.fetchval(
        "SELECT a.payload FROM analyses a JOIN transcripts t ON t.job_id = a.job_id"
        " WHERE a.kind = $2 AND a.provider = $3"
        " AND ((a.job_id = $1 AND (a.expire_time IS NULL OR a.expire_time > now()))"
        # The cache key includes the owner, so this never reaches another user's rows.
        "  OR (t.cache_key = (SELECT cache_key FROM transcripts WHERE job_id = $1)"
        "   AND a.create_time > now() - make_interval(secs => $4::float8)))"
        " ORDER BY (a.job_id = $1) DESC, a.create_time DESC LIMIT 1",
        job_id,
        kind,
        provider,
        max_age_s,
    )
    return None if raw is None else dict(json.loads(raw))


async def put(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    kind: str,
    provider: str,
    payload: dict[str, Any],
    *,
    tokens: int = 0,
    ttl_s: float | None,
) -> None:
    """Store (or replace) a payload; `ttl_s` None keeps it as long as the job."""
    await conn.execute(
        "INSERT INTO analyses (job_id, kind, provider, payload, tokens, expire_time)"
        " VALUES ($1, $2, $3, $4::jsonb, $5,"
        " CASE WHEN $6::float8 IS NULL THEN NULL"
        " ELSE now() + make_interval(secs => $6::float8) END)"
        " ON CONFLICT (job_id, kind, provider) DO UPDATE SET payload = EXCLUDED.payload,"
        " tokens = EXCLUDED.tokens, create_time = now(), expire_time = EXCLUDED.expire_time",
        job_id,
        kind,
        provider,
        json.dumps(payload),
        tokens,
        ttl_s,
    )


# -- highlights ------------------------------------------------------------------------


async def replace_highlights(
    conn: asyncpg.Connection, job_id: uuid.UUID, plans: Sequence[HighlightPlan]
) -> None:
    """The job's highlights, best first (clips not rendered yet)."""
    await conn.execute("DELETE FROM highlights WHERE job_id = $1", job_id)
    await conn.executemany(
        "INSERT INTO highlights (job_id, idx, start_s, end_s, score, reason, text)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(job_id, i, p.start_s, p.end_s, p.score, p.reason, p.text) for i, p in enumerate(plans)],
    )


async def list_highlights(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[asyncpg.Record]:
    """The job's highlights, best first."""
    return list(await conn.fetch("SELECT * FROM highlights WHERE job_id = $1 ORDER BY idx", job_id))


async def get_highlight(
    conn: asyncpg.Connection, job_id: uuid.UUID, idx: int
) -> asyncpg.Record | None:
    """One highlight."""
    return await conn.fetchrow(
        "SELECT * FROM highlights WHERE job_id = $1 AND idx = $2", job_id, idx
    )


async def set_clip(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    idx: int,
    *,
    blob_key: str,
    size_bytes: int,
    mime_type: str,
    captions_srt: str,
    start_s: float,
    end_s: float,
) -> None:
    """Record a rendered clip (its real edges may have moved to a keyframe)."""
    await conn.execute(
        "UPDATE highlights SET clip_blob_key = $3, clip_size_bytes = $4, clip_mime_type = $5,"
        " captions_srt = $6, start_s = $7, end_s = $8 WHERE job_id = $1 AND idx = $2",
        job_id,
        idx,
        blob_key,
        size_bytes,
        mime_type,
        captions_srt,
        start_s,
        end_s,
    )


async def clip_keys_with_children(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[str]:
    """Blob keys of the rendered clips of a job and of all its descendants
    (child jobs are deleted with their parent)."""
    rows = await conn.fetch(
        "WITH RECURSIVE tree AS (SELECT id FROM jobs WHERE id = $1"
        " UNION SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id)"
        " SELECT clip_blob_key FROM highlights WHERE job_id IN (SELECT id FROM tree)"
        " AND clip_blob_key IS NOT NULL",
        job_id,
    )
    return [str(r["clip_blob_key"]) for r in rows]
