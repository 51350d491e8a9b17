"""Search passages: writing the index and querying it."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from reelscribe.db.search_topk import keyword_top, least_terms, owner_prefix, tsquery_text
from reelscribe.db.search_vectors import semantic_large
from reelscribe.embeddings import to_pgvector

#: The query as a tsquery matching any of its terms.
# (to_tsquery with the 'simple' configuration re-reads the already stemmed
# lexemes unchanged; a plain cast is not allowed where the query stands in FROM.)
_ANY_TERM = "to_tsquery('simple', replace(plainto_tsquery('english', $1)::text, ' & ', ' | '))"

_HEADLINE_OPTIONS = "StartSel=[, StopSel=], MaxWords=40, MinWords=15"

#: Consecutive segments joined into one window passage.
WINDOW_SEGMENTS = 3

#: Libraries up to this many passages are searched by reading the owner's rows
#: and matching each; larger ones go through the GIN index. (Measured on 100k
#: passages: a 1,000-passage library answers in 0.6 ms by scanning and 2.2 ms
#: through the index, which walks every user's matches for common words; at
#: 20,000 passages the index wins, 7 ms against 13 ms.)
SCAN_MAX_PASSAGES = 4000

#: A "minimum should match" of k of the query's n terms is also given to the
#: GIN index as "any k of them, all present" (one AND group per combination),
#: up to this many groups; longer queries are filtered after the index alone.
MAX_COVERAGE_GROUPS = 64

#: Large libraries' semantic search takes Hamming candidates re-ranked by cosine
#: (reelscribe/db/search_vectors.py); False walks the HNSW index as before (the
#: bench's baseline).
LARGE_SEMANTIC = True

#: Large libraries rank only the rows that can be among the best
#: (reelscribe/db/search_topk.py); False runs the plain plan (tests compare the two).
TOP_K = True


@dataclass(frozen=True)
class Passage:
    """A stretch of a transcript to index."""

    start_s: float
    end_s: float
    text: str


def passages(segments: Sequence[tuple[float, float, str]]) -> list[Passage]:
    """Every segment, plus windows of consecutive segments (for questions that span them).

    Windows are built from the segments alone, never from the list being built.
    """
    singles = tuple(Passage(s, e, t) for s, e, t in segments if t.strip())
    windows = [
        Passage(w[0].start_s, w[-1].end_s, " ".join(p.text for p in w))
        for w in (singles[i : i + WINDOW_SEGMENTS] for i in range(len(singles) - 1))
        if len(w) > 1
    ]
    return [*singles, *windows]


async def replace_index(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    owner: str,
    language: str,
    job_create_time: datetime,
    items: Sequence[Passage],
    vectors: npt.NDArray[np.float32],
) -> None:
    """Replace the job's passages (inside the caller's transaction)."""
    await conn.execute("DELETE FROM search_passages WHERE job_id = $1", job_id)
    await conn.executemany(
        "INSERT INTO search_passages (job_id, idx, owner, language, job_create_time, start_s,"
        " end_s, text, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::vector)",
        [
            (
                job_id,
                i,
                owner,
                language,
                job_create_time,
                p.start_s,
                p.end_s,
                p.text,
                to_pgvector(vectors[i]),
            )
            for i, p in enumerate(items)
        ],
    )


async def copy_index(conn: asyncpg.Connection, source: uuid.UUID, target: uuid.UUID) -> None:
    """Give a cache-hit job the passages of the job it reused."""
    await conn.execute(
        "INSERT INTO search_passages (job_id, idx, owner, language, job_create_time, start_s,"
        " end_s, text, embedding) SELECT $2::uuid, p.idx, p.owner, p.language, j.create_time,"
        " p.start_s, p.end_s, p.text, p.embedding FROM search_passages p, jobs j"
        " WHERE p.job_id = $1 AND j.id = $2::uuid",
        source,
        target,
    )


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to; always one owner."""

    owner: str
    job_ids: Sequence[uuid.UUID] = ()
    language: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None

    def sql(self, first_arg: int) -> tuple[str, list[Any]]:
        """A WHERE clause (starting at `$first_arg`) and its arguments."""
        clauses: list[str] = [f"p.owner = ${first_arg}"]
        args: list[Any] = [self.owner]
        if self.job_ids:
            args.append(list(self.job_ids))
            clauses.append(f"p.job_id = ANY(${first_arg + len(args) - 1}::uuid[])")
        if self.language:
            args.append(self.language)
            clauses.append(f"p.language = ${first_arg + len(args) - 1}")
        if self.created_after is not None:
            args.append(self.created_after)
            clauses.append(f"p.job_create_time >= ${first_arg + len(args) - 1}")
        if self.created_before is not None:
            args.append(self.created_before)
            clauses.append(f"p.job_create_time < ${first_arg + len(args) - 1}")
        return " AND ".join(clauses), args


async def keyword(
    conn: asyncpg.Connection,
    query: str,
    filters: Filters,
    limit: int,
    *,
    headline_from: int = 0,
    headline_count: int = 0,
    min_coverage: float = 0.0,
) -> list[asyncpg.Record]:
    """Full-text matches of any query term, ranked by how well they cover it.

    `plainto_tsquery` accepts any input (operators and quotes are plain
    text); its terms are then OR-ed so a passage with most of the words still
    matches, and `ts_rank_cd` ranks fuller matches higher. Rows
    `headline_from` .. `headline_from + headline_count - 1` also carry their
    snippet (`headline`), so a keyword-only page needs one round trip.
    Passages matching less than `min_coverage` of the query's distinct terms
    are left out (a "minimum should match").

    Libraries over SCAN_MAX_PASSAGES go through the owner's own posting lists
    (`search_owner_terms`, migration 0011), and a minimum of k terms becomes
    "all of some k" for that index (`coverage_groups`); both are measured in
    BENCHMARKS.md (bench.search, heavy user).
    """
    where, args = filters.sql(6)
    # The owner filter is always there; pick the plan by the library's size
    # (counting stops at the threshold, so this costs well under a millisecond).
    # The same round trip reads the query's terms for the index conditions.
    facts = await conn.fetchrow(
        "SELECT (SELECT count(*) < $2 FROM (SELECT 1 FROM search_passages WHERE owner = $1"
        " LIMIT $2) s) AS small, tsvector_to_array(to_tsvector('english', $3)) AS terms",
        filters.owner,
        SCAN_MAX_PASSAGES,
        query,
    )
    terms = list(facts["terms"])
    if not facts["small"] and terms and TOP_K:
        # Large libraries: rank only the rows that can be among the best
        # (search_topk.py); the same rows as the plan below.
        top_where, top_args = filters.sql(3)
        async with conn.transaction():
            # Each of these queries reads a few hundred rows at most; starting
            # parallel workers would cost more than it saves (5 ms, measured).
            await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            top = await keyword_top(
                conn,
                query=query,
                terms=terms,
                prefix=owner_prefix(filters.owner),
                where=top_where,
                args=top_args,
                any_term=_ANY_TERM,
                limit=limit,
                min_terms=least_terms(len(terms), min_coverage),
                max_groups=MAX_COVERAGE_GROUPS,
            )
            if top is not None:
                return await _with_headlines(conn, query, top, headline_from, headline_count)
    groups = coverage_groups(terms, min_coverage)
    # Conditions for the indexes, each exactly equivalent to (the groups) or
    # implied by (the owner's terms) the conditions of the ranking, so they
    # narrow what is read, never the result. Written into the SQL only when
    # present, so that a generic plan can use them too.
    extra: list[Any] = []
    narrow = ""
    # The coverage count per passage, unless the groups (exactly equivalent)
    # already decide it.
    coverage = (
        " AND ($5::float8 <= 0 OR cardinality(ARRAY(SELECT unnest(tsvector_to_array(p.tsv))"
        " INTERSECT SELECT unnest(terms.t))) >= $5::float8 * cardinality(terms.t))"
    )
    if groups:
        extra.append(tsquery_text(groups))
        narrow += f" AND p.tsv @@ ${6 + len(args) + len(extra) - 1}::tsquery"
        coverage = " AND $5::float8 > 0"  # (true here; $5 must appear in the SQL)
    if not facts["small"] and terms:
        # Large libraries: the owner's own posting lists (migration 0011).
        extra.append(tsquery_text(groups or [(t,) for t in terms], owner_prefix(filters.owner)))
        where += (
            f" AND search_owner_terms(p.owner, p.tsv) @@ ${6 + len(args) + len(extra) - 1}::tsquery"
        )
    materialized = "MATERIALIZED" if facts["small"] else "NOT MATERIALIZED"
    return list(
        await conn.fetch(
            f"WITH scope AS {materialized} (SELECT p.job_id, p.idx, p.start_s, p.end_s, p.text,"
            f" p.tsv FROM search_passages p WHERE {where}),"
            f" terms AS (SELECT tsvector_to_array(to_tsvector('english', $1)) AS t),"
            f" top AS (SELECT p.job_id, p.idx, p.start_s, p.end_s, p.text,"
            f" ts_rank_cd(p.tsv, q) AS score, q FROM scope p, terms,"
            f" {_ANY_TERM} q WHERE p.tsv @@ q{narrow}"
            f"{coverage}"
            f" ORDER BY score DESC, p.job_id, p.idx LIMIT $2),"
            f" ranked AS (SELECT *, row_number() OVER (ORDER BY score DESC, job_id, idx) - 1"
            f" AS n FROM top)"
            f" SELECT job_id, idx, start_s, end_s, text, score,"
            f" CASE WHEN n >= $3 AND n < $3 + $4 THEN ts_headline('english', text, q,"
            f" '{_HEADLINE_OPTIONS}') END AS headline FROM ranked ORDER BY n",
            query,
            limit,
            headline_from,
            headline_count,
            min_coverage,
            *args,
            *extra,
        )
    )


async def _with_headlines(
    conn: asyncpg.Connection,
    query: str,
    ranked: Sequence[tuple[tuple[uuid.UUID, int], float]],
    headline_from: int,
    headline_count: int,
) -> list[asyncpg.Record]:
    """The passages of `ranked` ((job_id, idx), score), in its order, as `keyword`
    returns them: rows `headline_from` .. + `headline_count` - 1 also carry
    their snippet, made by the same SQL as in the plain plan."""
    return list(
        await conn.fetch(
            f"SELECT p.job_id, p.idx, p.start_s, p.end_s, p.text, u.score,"
            f" CASE WHEN u.n - 1 >= $2 AND u.n - 1 < $2 + $3 THEN ts_headline('english',"
            f" p.text, q, '{_HEADLINE_OPTIONS}') END AS headline"
            f" FROM unnest($4::uuid[], $5::int[], $6::real[])"
            f" WITH ORDINALITY AS u(job_id, idx, score, n)"
            f" JOIN search_passages p ON p.job_id = u.job_id AND p.idx = u.idx,"
            f" {_ANY_TERM} q ORDER BY u.n",
            query,
            headline_from,
            headline_count,
            [key[0] for key, _ in ranked],
            [key[1] for key, _ in ranked],
            [score for _, score in ranked],
        )
    )


def coverage_groups(terms: Sequence[str], min_coverage: float) -> list[tuple[str, ...]] | None:
    """Groups of terms such that a passage holds every term of some group
    exactly when it holds at least `min_coverage` of `terms`.

    `terms` are the query's distinct lexemes, as the coverage filter in
    `keyword` counts them. k is the least whole count that filter accepts
    (computed with the same float8 product, so the two agree at the
    boundary); the groups are every k-term combination, and as a tsquery
    (`tsquery_text`: each group AND-ed, the groups OR-ed) they let the GIN
    index intersect posting lists instead of handing back every passage with
    any one term. The filter itself stays in the query:
    the groups only narrow what the index returns. None when there is
    nothing to narrow (no minimum, or too many combinations).
    """
    if min_coverage <= 0 or not terms:
        return None
    need = min_coverage * len(terms)
    k = next((c for c in range(len(terms) + 1) if c >= need), None)
    if k is None or k <= 1 or math.comb(len(terms), k) > MAX_COVERAGE_GROUPS:
        return None
    return list(itertools.combinations(terms, k))


async def semantic(
    conn: asyncpg.Connection, vector: npt.NDArray[np.float32], filters: Filters, limit: int
) -> list[asyncpg.Record]:
    """Nearest passages by cosine similarity, best first.

    Libraries up to SCAN_MAX_PASSAGES are read whole (the planner scans the
    owner's rows: exact). Larger ones take Hamming candidates re-ranked by
    cosine (reelscribe/db/search_vectors.py, migration 0013); the score is
    the exact cosine either way.
    """
    small = await conn.fetchval(
        "SELECT count(*) < $2 FROM (SELECT 1 FROM search_passages WHERE owner = $1 LIMIT $2) s",
        filters.owner,
        SCAN_MAX_PASSAGES,
    )
    if not small and LARGE_SEMANTIC:
        where, args = filters.sql(4)
        return await semantic_large(conn, to_pgvector(vector), where=where, args=args, limit=limit)
    where, args = filters.sql(3)
    async with conn.transaction():
        # Keep scanning the HNSW graph until enough rows pass the owner filter.
        await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        return list(
            await conn.fetch(
                f"SELECT p.job_id, p.idx, p.start_s, p.end_s, p.text,"
                f" 1 - (p.embedding <=> $1::vector) AS score FROM search_passages p"
                f" WHERE {where} ORDER BY p.embedding <=> $1::vector LIMIT $2",
                to_pgvector(vector),
                limit,
                *args,
            )
        )


async def headlines(conn: asyncpg.Connection, query: str, texts: Sequence[str]) -> list[str]:
    """Texts with the query's matching terms between `[` and `]`."""
    rows = await conn.fetch(
        f"SELECT ts_headline('english', t, {_ANY_TERM}, '{_HEADLINE_OPTIONS}') AS h"
        " FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
        query,
        list(texts),
    )
    return [r["h"] for r in rows]
