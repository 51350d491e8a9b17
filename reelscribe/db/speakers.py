"""Queries on speakers: labels on segments and words, names, and who speaks in a span.

Segments and words carry a speaker number (`speaker_idx`, from 1); the
`speakers` table holds each number's display name. Names are joined in when
results are read, never copied, so a rename shows everywhere at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


def default_name(idx: int) -> str:
    """What a speaker is called until renamed."""
    return f"Speaker {idx}"


@dataclass(frozen=True)
class SpeakerRow:
    """One speaker of a transcript."""

    idx: int
    display_name: str
    speaking_s: float


def _row(r: asyncpg.Record) -> SpeakerRow:
    return SpeakerRow(r["idx"], r["display_name"] or default_name(r["idx"]), r["speaking_s"])


async def replace_labels(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    speaking_s: Sequence[float],
    segments: Sequence[tuple[int, int | None]],
    words: Sequence[tuple[int, int, int | None]],
) -> None:
    """Store a diarization (inside the caller's transaction): speakers 1..n with
    their speaking seconds, each segment's (idx, speaker) and each word's
    (segment_idx, idx, speaker). Names given to speakers before are kept."""
    names = {
        r["idx"]: r["display_name"]
        for r in await conn.fetch(
            "SELECT idx, display_name FROM speakers WHERE job_id = $1", job_id
        )
    }
    await conn.execute("DELETE FROM speakers WHERE job_id = $1", job_id)
    await conn.executemany(
        "INSERT INTO speakers (job_id, idx, display_name, speaking_s) VALUES ($1, $2, $3, $4)",
        [(job_id, n, names.get(n, ""), s) for n, s in enumerate(speaking_s, start=1)],
    )
    await conn.execute(
        "UPDATE segments s SET speaker_idx = u.speaker FROM unnest($2::int[], $3::int[])"
        " AS u(idx, speaker) WHERE s.job_id = $1 AND s.idx = u.idx",
        job_id,
        [i for i, _ in segments],
        [s for _, s in segments],
    )
    await conn.execute(
        "UPDATE words w SET speaker_idx = u.speaker FROM unnest($2::int[], $3::int[], $4::int[])"
        " AS u(segment_idx, idx, speaker)"
        " WHERE w.job_id = $1 AND w.segment_idx = u.segment_idx AND w.idx = u.idx",
        job_id,
        [s for s, _, _ in words],
        [i for _, i, _ in words],
        [k for _, _, k in words],
    )


async def list_speakers(conn: asyncpg.Connection, job_id: uuid.UUID) -> list[SpeakerRow]:
    """The transcript's speakers, by number (none when speakers were not labelled)."""
    rows = await conn.fetch(
        "SELECT idx, display_name, speaking_s FROM speakers WHERE job_id = $1 ORDER BY idx",
        job_id,
    )
    return [_row(r) for r in rows]


async def rename(
    conn: asyncpg.Connection, job_id: uuid.UUID, idx: int, display_name: str
) -> SpeakerRow | None:
    """Name a speaker (empty restores the default); None if there is no such speaker."""
    row = await conn.fetchrow(
        "UPDATE speakers SET display_name = $3 WHERE job_id = $1 AND idx = $2"
        " RETURNING idx, display_name, speaking_s",
        job_id,
        idx,
        display_name,
    )
    return None if row is None else _row(row)


async def copy_speakers(conn: asyncpg.Connection, source: uuid.UUID, target: uuid.UUID) -> None:
    """Give a transcript copied from `source` (`transcripts.copy_transcript`)
    the speakers and labels of the original."""
    await conn.execute(
        "INSERT INTO speakers (job_id, idx, display_name, speaking_s)"
        " SELECT $2::uuid, idx, display_name, speaking_s FROM speakers WHERE job_id = $1"
        " ON CONFLICT DO NOTHING",
        source,
        target,
    )
    await conn.execute(
        "UPDATE segments t SET speaker_idx = s.speaker_idx FROM segments s"
        " WHERE s.job_id = $1 AND t.job_id = $2 AND t.idx = s.idx",
        source,
        target,
    )
    await conn.execute(
        "UPDATE words t SET speaker_idx = s.speaker_idx FROM words s WHERE s.job_id = $1"
        " AND t.job_id = $2 AND t.segment_idx = s.segment_idx AND t.idx = s.idx",
        source,
        target,
    )


async def dominant_names(
    conn: asyncpg.Connection, spans: Sequence[tuple[uuid.UUID, float, float]]
) -> list[str]:
    """For each (job, start, end): the display name of the speaker whose
    segments cover most of the span; "" when the job's speakers were not
    labelled. Read at query time, so names are always the current ones."""
    if not spans:
        return []
    rows = await conn.fetch(
        "SELECT q.n, (SELECT CASE WHEN sp.display_name = '' THEN 'Speaker ' || sp.idx"
        "   ELSE sp.display_name END"
        "   FROM segments s JOIN speakers sp ON sp.job_id = s.job_id AND sp.idx = s.speaker_idx"
        "   WHERE s.job_id = q.job_id AND s.end_s > q.start_s AND s.start_s < q.end_s"
        "   GROUP BY sp.idx, sp.display_name"
        "   ORDER BY sum(least(s.end_s, q.end_s) - greatest(s.start_s, q.start_s)) DESC, sp.idx"
        "   LIMIT 1) AS name"
        " FROM unnest($1::uuid[], $2::float8[], $3::float8[]) WITH ORDINALITY"
        " AS q(job_id, start_s, end_s, n) ORDER BY q.n",
        [j for j, _, _ in spans],
        [a for _, a, _ in spans],
        [b for _, _, b in spans],
    )
    return [r["name"] or "" for r in rows]
