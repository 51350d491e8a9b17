"""Semantic search for large libraries: Hamming candidates, re-ranked by cosine.

One owner's nearest passages used to be found by walking the library-wide
HNSW graph and dropping other owners' rows (iterative scan, strict order).
For an owner with 100,000 of 1,000,000 passages that was slow (SQL p95
182 ms) and found under half of the true 50 nearest (BENCHMARKS.md,
bench.search). Here, for libraries over SCAN_MAX_PASSAGES
(reelscribe/db/search.py), every one of the owner's passages that passes the
filters is looked at, in three steps, each reading less than the one before
(all from migration 0013):

1. The Hamming distance between the query's and each passage's 2-bit
   thermometer code (`search_vector_code`: an L1 distance of the vectors
   quantized to four levels a dimension), read from the index on
   `search_vectors (owner) INCLUDE (..., code)` alone: the `candidates`
   closest.
2. Those candidates by cosine distance of their half-precision vectors
   (`search_vectors.half`, a primary key look-up each): the
   `limit * EXACT_MARGIN` closest.
3. Those by the exact cosine of the passages' own `vector(384)` embeddings,
   which is the score returned, ties broken by (job_id, idx) as in
   exact search.

Step 1 is the only approximation that can lose a true neighbour. How many
candidates keep recall@50 against exact search at or above 0.95 was measured
with bench.search on its hardest case (every sentence has 50 near-identical
copies in the heavy user's library), see BENCHMARKS.md; bench.search reports
the recall on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

#: Step 1's candidates per row asked for (at least MIN_CANDIDATES). With 20,
#: i.e. 1,000 for 50 rows, recall@50 was 0.998 (lowest 0.98) on bench.search's
#: heavy user; 500 gave 0.980 (lowest 0.90).
CANDIDATES_PER_ROW = 20
MIN_CANDIDATES = 200
#: Step 2 keeps this many times the rows asked for, so that half precision's
#: rounding (about 1e-3 of a cosine) cannot push out a row that the exact
#: cosine of step 3 would keep.
EXACT_MARGIN = 2


def candidates_for(limit: int) -> int:
    """How many passages step 1 hands to the re-ranking for a page of `limit`."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_ROW * limit)


async def semantic_large(
    conn: asyncpg.Connection,
    vector: str,
    *,
    where: str,
    args: Sequence[Any],
    limit: int,
    candidates: int | None = None,
) -> list[asyncpg.Record]:
    """The `limit` passages nearest to `vector` (pgvector text) by cosine, best first.

    `where` and `args` are the caller's filters on `search_vectors p`, their
    placeholders starting at $4. Rows are (job_id, idx, start_s, end_s, text,
    score), score being the exact cosine similarity.
    """
    n = candidates if candidates is not None else candidates_for(limit)
    async with conn.transaction():
        # One index-only scan of the owner's entries: parallel workers for it
        # measured slower on a busy 2-core machine (34 against 24-32 ms).
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        # The query's code and half vector are computed once (sub-selects),
        # not once per row as a generic plan would do with a plain expression.
        return list(
            await conn.fetch(
                "WITH near AS MATERIALIZED (SELECT p.job_id, p.idx FROM search_vectors p"
                f" WHERE {where} ORDER BY p.code <~> (SELECT search_vector_code($1::vector)),"
                " p.job_id, p.idx LIMIT $3),"
                " close AS MATERIALIZED (SELECT v.job_id, v.idx FROM near"
                " JOIN search_vectors v ON v.job_id = near.job_id AND v.idx = near.idx"
                " ORDER BY v.half <=> (SELECT $1::vector::halfvec(384)), v.job_id, v.idx"
                f" LIMIT $2 * {EXACT_MARGIN})"
                " SELECT s.job_id, s.idx, s.start_s, s.end_s, s.text,"
                " 1 - (s.embedding <=> $1::vector) AS score FROM close"
                " JOIN search_passages s ON s.job_id = close.job_id AND s.idx = close.idx"
                " ORDER BY s.embedding <=> $1::vector, s.job_id, s.idx LIMIT $2",
                vector,
                limit,
                n,
                *args,
            )
        )
