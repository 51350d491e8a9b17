"""Keyword search of a large library returns exactly what the small-library plan returns.

Libraries over `SCAN_MAX_PASSAGES` are read through the owner's own posting
lists (migration 0011), a minimum-should-match becomes AND groups for the
index (`coverage_groups`), and only the rows that can be among the best are
ranked (`search_topk`, migration 0012: tiers by how many query terms a row
holds, rows with a repeated term ranked apart). All are only ways to read
less: here the same queries run every way over the same real rows and must
agree row for row and score for score, for page sizes that stop the top-k
early and late.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reelscribe import db
from reelscribe.config import Settings
from reelscribe.db import search as search_db
from reelscribe.db import search_topk

WORDS = [
    "volcano",
    "shape",
    "climate",
    "ocean",
    "bread",
    "yeast",
    "jupiter",
    "moons",
    "roman",
    "roads",
    "trade",
    "sleep",
    "brain",
    "music",
    "glaciers",
    "melting",
    "rivers",
    "computers",
    "modern",
    "science",
    "O'Brien's",
    "back\\slash",
    "well-known",
]
QUERIES = [
    "how volcanoes shape the climate",
    "computers in modern science",
    "music",
    "roman roads trade and rivers melting glaciers",
    "O'Brien's back\\slash theory",
    "the and of",
    "music music jupiter",
    "well-known rivers and modern music in the ocean",
]


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    pool = await db.create_pool(settings.database_url, max_size=1)
    async with pool.acquire() as connection:
        await db.apply_migrations(connection)
        yield connection
    await pool.close()


async def _library(conn: asyncpg.Connection, owner: str, passages: int, seed: int) -> None:
    rng = random.Random(seed)
    vector = "[" + ",".join(["0.05"] * 384) + "]"
    for _j in range(passages // 10):
        job_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO jobs (id, owner, state, stage) VALUES ($1, $2, 'SUCCEEDED', 'FINALIZE')",
            job_id,
            owner,
        )
        await conn.executemany(
            "INSERT INTO search_passages (job_id, idx, owner, language, job_create_time,"
            " start_s, end_s, text, embedding) VALUES ($1, $2, $3, 'en', now(), $4, $5, $6,"
            " $7::vector)",
            [
                (
                    job_id,
                    k,
                    owner,
                    k * 5.0,
                    k * 5.0 + 4.0,
                    " ".join(rng.choices(WORDS, k=6)),
                    vector,
                )
                for k in range(10)
            ],
        )


async def test_large_library_plans_match_the_scan(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, neighbour = f"large-{uuid.uuid4()}", f"neighbour-{uuid.uuid4()}"
    await _library(conn, owner, 300, seed=1)
    await _library(conn, neighbour, 100, seed=2)
    try:
        await conn.execute("ANALYZE search_passages")
        jobs = [
            r["job_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT job_id FROM search_passages WHERE owner = $1"
                " ORDER BY job_id LIMIT 9",
                owner,
            )
        ]
        compared = 0
        for filters in (
            search_db.Filters(owner=owner),
            search_db.Filters(owner=owner, job_ids=jobs, language="en"),
        ):
            for min_coverage in (0.0, 0.51, 0.75):
                for query in QUERIES:
                    for limit in (3, 20, 500):
                        # Reference: the scan, ranking and counting every passage.
                        monkeypatch.setattr(search_db, "SCAN_MAX_PASSAGES", 10**6)
                        monkeypatch.setattr(search_db, "MAX_COVERAGE_GROUPS", 0)
                        scan = await search_db.keyword(
                            conn,
                            query,
                            filters,
                            limit,
                            min_coverage=min_coverage,
                            headline_from=1,
                            headline_count=2,
                        )
                        monkeypatch.setattr(search_db, "SCAN_MAX_PASSAGES", 1)
                        for groups, top_k, walk in (
                            (64, False, 0),
                            (64, True, 2000),
                            (64, True, 7),
                            (2, True, 7),
                        ):
                            # The large-library plans: posting lists and coverage
                            # groups, ranking every match or only the top tiers
                            # (each tier walked in key order, or after 7 rows read
                            # through the posting lists; with 2 groups at most,
                            # long queries fall back).
                            monkeypatch.setattr(search_db, "MAX_COVERAGE_GROUPS", groups)
                            monkeypatch.setattr(search_db, "TOP_K", top_k)
                            monkeypatch.setattr(search_topk, "WALK_ROWS", walk)
                            large = await search_db.keyword(
                                conn,
                                query,
                                filters,
                                limit,
                                min_coverage=min_coverage,
                                headline_from=1,
                                headline_count=2,
                            )
                            assert [tuple(r) for r in large] == [tuple(r) for r in scan], (
                                query,
                                min_coverage,
                                limit,
                                groups,
                                top_k,
                                walk,
                                bool(filters.job_ids),
                            )
                        compared += len(scan)
        # The comparison covered real matches, ties and repeated terms, not empty lists.
        assert compared > 2000
    finally:
        await conn.execute("DELETE FROM jobs WHERE owner = ANY($1::text[])", [owner, neighbour])


def test_coverage_groups_follow_the_float_boundary_and_quote_lexemes() -> None:
    # 0.51 of 3 terms is 1.53: two of them. 0.51 of 2 is 1.02: both.
    assert search_db.coverage_groups(["a", "b", "c"], 0.51) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert search_db.coverage_groups(["a", "b"], 0.51) == [("a", "b")]
    # One term, or no minimum: nothing to narrow.
    assert search_db.coverage_groups(["a", "b"], 0.0) is None
    assert search_db.coverage_groups(["a", "b", "c"], 0.2) is None
    assert search_db.tsquery_text([("o'b", "x\\y")]) == "('o''b' & 'x\\\\y')"
