"""Building a search library in bulk: jobs and passages straight into Postgres.

Passages have the shape the real index has (reelscribe/db/migrations/0004):
a `vector(384)` MiniLM embedding under an HNSW cosine index, and a generated
English `tsvector` under a GIN index. Texts come from a small grammar; each
distinct sentence is embedded once with the real model, and each row's vector
is that embedding plus a little noise, renormalised (cosine about 0.95 to the
sentence's), so no two rows share a vector (HNSW degrades on exact
duplicates, which real transcripts do not have).

Rows go in with binary COPY (the vector encoded in pgvector's binary format;
the triggers of migrations 0012 and 0013 copy each row's words into
search_terms and its vector, coded, into search_vectors) and
the indexes are rebuilt once at the end, which is how a restore would build
them and far faster than row-by-row inserts into a live HNSW graph.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import numpy.typing as npt

from reelscribe.embeddings import get_embedder

#: Passages per synthetic job (a few minutes of speech: segments and windows).
PER_JOB = 20
#: Noise added to each row's embedding before renormalising (per dimension;
#: with 384 dimensions this keeps cosine to the sentence's vector near 0.95).
NOISE = 0.016
_DIM = 384
_COLUMNS = (
    "job_id",
    "idx",
    "owner",
    "language",
    "job_create_time",
    "start_s",
    "end_s",
    "text",
    "embedding",
)


def _encode_vector(value: npt.NDArray[np.float32]) -> bytes:
    """pgvector's binary input: dimensions, a reserved 0, then big-endian float4s."""
    return struct.pack(">HH", _DIM, 0) + value.astype(">f4").tobytes()


def _already_encoded(value: bytes) -> bytes:
    return value


class Corpus:
    """Distinct sentences with their real embeddings, and noisy copies of them."""

    def __init__(self, texts: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        self.texts = list(texts)
        self.vectors = vectors.astype(np.float32)

    @classmethod
    async def make(cls, sentences: Callable[[int, random.Random], list[str]], n: int) -> Corpus:
        texts = sentences(n, random.Random(11))
        vectors = await asyncio.to_thread(get_embedder().embed, texts)
        return cls(texts, np.asarray(vectors, dtype=np.float32))

    def rows(self, picks: npt.NDArray[np.int64], rng: np.random.Generator) -> Iterator[tuple]:
        """(text, encoded vector) for each picked sentence, vectors jittered."""
        noisy = self.vectors[picks] + rng.normal(0.0, NOISE, (len(picks), _DIM)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for k, i in enumerate(picks.tolist()):
            yield self.texts[i], _encode_vector(noisy[k])


async def drop_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the secondary indexes of the passages, their words (search_terms) and
    their vectors (search_vectors; both filled by triggers as rows arrive);
    returns their definitions."""
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE tablename IN ('search_passages', 'search_terms', 'search_vectors')"
        " AND indexname NOT IN ('search_passages_pkey', 'search_terms_pkey',"
        " 'search_vectors_pkey')"
    )
    for r in rows:
        await conn.execute(f"DROP INDEX {r['indexname']}")
    return [r["indexdef"] for r in rows]


async def create_indexes(conn: asyncpg.Connection, definitions: Sequence[str]) -> float:
    """Rebuild the dropped indexes (HNSW with enough memory to stay in RAM), then vacuum
    and checkpoint; seconds taken."""
    t0 = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '3GB'")
    for definition in definitions:
        await conn.execute(definition, timeout=3600)
    await conn.execute("RESET maintenance_work_mem")
    # What autovacuum does soon after a bulk load, done before measuring rather
    # than during it: statistics, and pages marked all-visible (the Hamming
    # scan of search_vectors then runs index-only); then the checkpoint that
    # writes the load out, so the measurements do not share the machine with it.
    for table in ("search_passages", "search_terms", "search_vectors", "jobs"):
        await conn.execute(f"VACUUM (ANALYZE) {table}", timeout=1800)
    await conn.execute("CHECKPOINT", timeout=1800)
    return time.perf_counter() - t0


async def add_owner(
    conn: asyncpg.Connection,
    corpus: Corpus,
    owners: Sequence[str],
    passages: int,
    *,
    seed: int,
    batch_jobs: int = 500,
) -> None:
    """Add `passages` passages in jobs of PER_JOB, the jobs dealt round `owners`."""
    await conn.set_type_codec(
        "vector", schema="public", encoder=_already_encoded, decoder=bytes, format="binary"
    )
    rng = np.random.default_rng(seed)
    jobs = passages // PER_JOB
    base = datetime.now(UTC)
    for start in range(0, jobs, batch_jobs):
        end = min(jobs, start + batch_jobs)
        batch = [(uuid.uuid4(), owners[j % len(owners)], j) for j in range(start, end)]
        await conn.copy_records_to_table(
            "jobs",
            columns=("id", "owner", "state", "stage", "create_time"),
            records=[
                (job_id, owner, "SUCCEEDED", "FINALIZE", base - timedelta(minutes=j))
                for job_id, owner, j in batch
            ],
        )
        picks = rng.integers(0, len(corpus.texts), size=len(batch) * PER_JOB)
        texts = corpus.rows(picks, rng)
        records = []
        for job_id, owner, j in batch:
            created = base - timedelta(minutes=j)
            for k in range(PER_JOB):
                text, vector = next(texts)
                records.append(
                    (job_id, k, owner, "en", created, k * 5.0, k * 5.0 + 4.5, text, vector)
                )
        await conn.copy_records_to_table("search_passages", columns=_COLUMNS, records=records)
