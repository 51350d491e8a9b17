"""Semantic search of a large library: Hamming candidates re-ranked by cosine.

Libraries over `SCAN_MAX_PASSAGES` take their nearest passages from
`search_vectors` (migration 0013, reelscribe/db/search_vectors.py): the
closest 2-bit codes, then half-precision cosine, then the exact cosine of
the passages' own embeddings. Here the same queries run that way and as an
exact scan over the same real rows: with candidates enough for every row the
two must agree row for row and score for score (so the re-ranking steps and
the filters are exact), and with the default number of candidates they must
still agree where the true neighbours stand out, as near-duplicates of a
topic do. The trigger keeps the copy equal to the passages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest

from reelscribe import db
from reelscribe.config import Settings
from reelscribe.db import search as search_db
from reelscribe.db import search_vectors
from reelscribe.embeddings import to_pgvector

DIM = 384
TOPICS = 30


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    pool = await db.create_pool(settings.database_url, max_size=1)
    async with pool.acquire() as connection:
        await db.apply_migrations(connection)
        yield connection
    await pool.close()


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


async def _library(
    conn: asyncpg.Connection,
    owner: str,
    centres: npt.NDArray[np.float32],
    jobs: int,
    rng: np.random.Generator,
) -> None:
    """`jobs` jobs of 15 passages, each near one topic centre (cosine about 0.95,
    as bench.search's jittered copies), in two languages and a spread of days."""
    now = datetime.now(UTC)
    for j in range(jobs):
        job_id = uuid.uuid4()
        created = now - timedelta(days=j)
        await conn.execute(
            "INSERT INTO jobs (id, owner, state, stage, create_time)"
            " VALUES ($1, $2, 'SUCCEEDED', 'FINALIZE', $3)",
            job_id,
            owner,
            created,
        )
        topics = rng.integers(0, len(centres), size=15)
        vectors = _unit(centres[topics] + rng.normal(0.0, 0.016, (15, DIM)))
        await conn.executemany(
            "INSERT INTO search_passages (job_id, idx, owner, language, job_create_time,"
            " start_s, end_s, text, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::vector)",
            [
                (
                    job_id,
                    k,
                    owner,
                    "de" if j % 3 == 0 else "en",
                    created,
                    k * 5.0,
                    k * 5.0 + 4.0,
                    f"topic {t}",
                    to_pgvector(vectors[k]),
                )
                for k, t in enumerate(topics.tolist())
            ],
        )


async def _exact(
    conn: asyncpg.Connection,
    vector: npt.NDArray[np.float32],
    filters: search_db.Filters,
    limit: int,
) -> list[tuple[object, ...]]:
    """Every passage that passes the filters, ranked by exact cosine (no index)."""
    where, args = filters.sql(3)
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        rows = await conn.fetch(
            f"SELECT p.job_id, p.idx, p.start_s, p.end_s, p.text,"
            f" 1 - (p.embedding <=> $1::vector) AS score FROM search_passages p"
            f" WHERE {where} ORDER BY p.embedding <=> $1::vector, p.job_id, p.idx LIMIT $2",
            to_pgvector(vector),
            limit,
            *args,
        )
    return [tuple(r) for r in rows]


async def test_large_library_semantic_matches_exact_search(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(16)
    centres = _unit(rng.normal(size=(TOPICS, DIM)))
    owner, neighbour = f"large-{uuid.uuid4()}", f"neighbour-{uuid.uuid4()}"
    await _library(conn, owner, centres, 40, rng)  # 600 passages
    await _library(conn, neighbour, centres, 20, rng)
    try:
        await conn.execute("VACUUM (ANALYZE) search_vectors")
        jobs = [
            r["job_id"]
            for r in await conn.fetch(
                "SELECT id AS job_id FROM jobs WHERE owner = $1 ORDER BY id LIMIT 12", owner
            )
        ]
        every = [
            search_db.Filters(owner=owner),
            search_db.Filters(owner=owner, job_ids=jobs, language="en"),
            search_db.Filters(
                owner=owner,
                created_after=datetime.now(UTC) - timedelta(days=30),
                created_before=datetime.now(UTC) - timedelta(days=5),
            ),
        ]
        # Topic centres (their near-duplicates are the true neighbours) and
        # directions near nothing (no neighbours stand out).
        queries = [*centres[:6], *_unit(rng.normal(size=(2, DIM)))]
        monkeypatch.setattr(search_db, "SCAN_MAX_PASSAGES", 1)
        compared = 0
        for filters in every:
            for q in queries:
                for limit in (1, 10, 50, 700):
                    exact = await _exact(conn, q, filters, limit)
                    # Candidates enough for every row: the re-ranking is exact.
                    monkeypatch.setattr(search_vectors, "CANDIDATES_PER_ROW", 10**4)
                    whole = await search_db.semantic(conn, q, filters, limit)
                    assert [tuple(r) for r in whole] == exact, (limit, filters)
                    compared += len(exact)
        assert compared > 3000
        # The default candidates (200 for up to 10 rows, of 600 passages) still
        # find every true neighbour of a topic's centre, filtered or not.
        monkeypatch.undo()
        monkeypatch.setattr(search_db, "SCAN_MAX_PASSAGES", 1)
        assert search_vectors.candidates_for(10) < 600
        for filters in every[:1] + every[2:]:
            for q in centres[:6]:
                exact = await _exact(conn, q, filters, 10)
                got = await search_db.semantic(conn, q, filters, 10)
                assert [tuple(r) for r in got] == exact
                assert exact and exact[-1][5] > 0.9  # the neighbours are a topic's
    finally:
        await conn.execute("DELETE FROM jobs WHERE owner = ANY($1::text[])", [owner, neighbour])


async def test_the_vector_copy_follows_the_passages(conn: asyncpg.Connection) -> None:
    owner = f"copy-{uuid.uuid4()}"
    rng = np.random.default_rng(3)
    await _library(conn, owner, _unit(rng.normal(size=(3, DIM))), 2, rng)
    try:
        # Each passage's copy: same key, owner, language and time, its code
        # and its half-precision vector (within half precision of the original).
        rows = await conn.fetch(
            "SELECT (v.owner, v.language, v.job_create_time) = (p.owner, p.language,"
            " p.job_create_time) AS same, v.code = search_vector_code(p.embedding) AS coded,"
            " (v.half::vector <=> p.embedding) < 1e-5 AS close,"
            " bit_count(v.code) AS ones FROM search_passages p"
            " JOIN search_vectors v USING (job_id, idx) WHERE p.owner = $1",
            owner,
        )
        assert len(rows) == 30 and all(r["same"] and r["coded"] and r["close"] for r in rows)
        # Three runs of 384 bits, each a threshold further up: about 3 x 384 / 2 ones.
        assert all(300 < r["ones"] < 850 for r in rows)
        # A passage rewritten in place (the copy is an upsert), then a job deleted.
        await conn.execute(
            "UPDATE search_passages SET language = 'fr', embedding = $2::vector WHERE owner = $1",
            owner,
            to_pgvector(_unit(rng.normal(size=DIM))),
        )
        assert await conn.fetchval(
            "SELECT bool_and(v.language = 'fr' AND v.code = search_vector_code(p.embedding))"
            " FROM search_passages p JOIN search_vectors v USING (job_id, idx)"
            " WHERE p.owner = $1",
            owner,
        )
        await conn.execute("DELETE FROM jobs WHERE owner = $1", owner)
        assert (
            await conn.fetchval("SELECT count(*) FROM search_vectors WHERE owner = $1", owner) == 0
        )
    finally:
        await conn.execute("DELETE FROM jobs WHERE owner = $1", owner)
