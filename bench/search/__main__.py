"""Search latency and throughput over 100,000 indexed passages.

    .venv/bin/python -m bench.search [--passages 100000] [--record]

Loads passages for many users and jobs straight into Postgres (real MiniLM
embeddings of generated sentences), starts the real server, and measures
Search through gRPC per mode: p50/p95 latency of sequential queries (query
embedding included) and throughput with 16 concurrent clients. The baseline
is the same keyword query run directly in Postgres, without gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
import uuid
from datetime import date

from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.record import record
from reelscribe import db
from reelscribe.auth import mint_token
from reelscribe.db import search as search_db
from reelscribe.embeddings import get_embedder, to_pgvector

SECRET = "bench-secret-" + "s" * 32
ADDRESS = "127.0.0.1:50191"
SUBJECTS = [
    "the ocean",
    "volcanoes",
    "bread",
    "the moon",
    "roman roads",
    "sleep",
    "vaccines",
    "printing presses",
    "jupiter",
    "rice",
    "lemons",
    "telegraphs",
    "exercise",
    "glaciers",
    "bees",
    "forests",
    "deserts",
    "rivers",
    "computers",
    "music",
]
VERBS = ["changes", "explains", "shapes", "reveals", "protects", "connects", "warms", "feeds"]
OBJECTS = [
    "daily life",
    "the climate",
    "our health",
    "ancient cities",
    "the food we eat",
    "distant planets",
    "the human brain",
    "modern science",
    "trade routes",
    "the weather",
]
QUERIES = [
    "how volcanoes shape the climate",
    "bread and yeast",
    "what protects our health",
    "jupiter moons",
    "roman roads trade",
    "sleep and the brain",
    "music",
    "glaciers melting",
    "why rivers matter",
    "computers in modern science",
]


def _sentences(n: int, rng: random.Random) -> list[str]:
    return [
        f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
        f"in lecture {i}."
        for i in range(n)
    ]


async def _load(url: str, passages: int, users: int) -> str:
    rng = random.Random(11)
    texts = _sentences(2000, rng)
    vectors = await asyncio.to_thread(get_embedder().embed, texts)
    pool = await db.create_pool(url, max_size=2)
    per_job = 20
    jobs = passages // per_job
    async with pool.acquire() as conn:
        await conn.execute("DROP INDEX IF EXISTS search_passages_embedding_idx")
        for start in range(0, jobs, 500):
            end = min(jobs, start + 500)
            batch = [(uuid.uuid4(), f"user-{j % users}") for j in range(start, end)]
            await conn.executemany(
                "INSERT INTO jobs (id, owner, state, stage)"
                " VALUES ($1, $2, 'SUCCEEDED', 'FINALIZE')",
                batch,
            )
            rows = []
            for job_id, owner in batch:
                for k in range(per_job):
                    i = rng.randrange(len(texts))
                    rows.append(
                        (
                            job_id,
                            k,
                            owner,
                            "en",
                            k * 5.0,
                            k * 5.0 + 4.5,
                            texts[i],
                            to_pgvector(vectors[i]),
                        )
                    )
            await conn.executemany(
                "INSERT INTO search_passages (job_id, idx, owner, language, job_create_time,"
                " start_s, end_s, text, embedding) VALUES ($1, $2, $3, $4, now(), $5, $6, $7,"
                " $8::vector)",
                rows,
            )
        t0 = time.perf_counter()
        await conn.execute(
            "CREATE INDEX search_passages_embedding_idx ON search_passages"
            " USING hnsw (embedding vector_cosine_ops)"
        )
        print(f"HNSW index over {passages} passages built in {time.perf_counter() - t0:.0f} s")
        await conn.execute("ANALYZE search_passages")
    await pool.close()
    return "user-7"


async def _throughput(
    client: ReelscribeClient, mode: v1.SearchMode, *, seconds: float, concurrency: int
) -> int:
    """Queries completed in `seconds` by `concurrency` concurrent callers."""
    done = 0
    stop = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await client.search(QUERIES[(done + k) % len(QUERIES)], mode=mode)
            done += 1

    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    return done


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _measure(address: str, user: str, url: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    token = mint_token(SECRET, user)
    async with ReelscribeClient(address, token) as client:
        for name, mode in (
            ("keyword", v1.SearchMode.KEYWORD),
            ("semantic", v1.SearchMode.SEMANTIC),
            ("hybrid", v1.SearchMode.HYBRID),
        ):
            for q in QUERIES:  # warm-up
                await client.search(q, mode=mode)
            latencies = []
            for i in range(200):
                t0 = time.perf_counter()
                await client.search(QUERIES[i % len(QUERIES)], mode=mode)
                latencies.append(time.perf_counter() - t0)
            done = await _throughput(client, mode, seconds=10.0, concurrency=16)
            rows.append(
                (
                    f"{name} via gRPC",
                    f"p50 {_pct(latencies, 50) * 1000:.1f} ms, "
                    f"p95 {_pct(latencies, 95) * 1000:.1f} ms, {done / 10:.0f} queries/s "
                    "at concurrency 16",
                )
            )
    pool = await db.create_pool(url, max_size=1)
    latencies = []
    async with pool.acquire() as conn:
        for i in range(200):
            t0 = time.perf_counter()
            await search_db.keyword(
                conn, QUERIES[i % len(QUERIES)], search_db.Filters(owner=user), 50
            )
            latencies.append(time.perf_counter() - t0)
    await pool.close()
    rows.append(
        (
            "baseline: keyword SQL alone",
            f"p50 {_pct(latencies, 50) * 1000:.1f} ms, p95 {_pct(latencies, 95) * 1000:.1f} ms",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    env = {"REELSCRIBE_RATE_LIMIT_PER_S": "100000", "REELSCRIBE_RATE_LIMIT_BURST": "100000"}
    with bench_stack(ADDRESS, SECRET, extra_env=env) as (stack, _):
        database_url = stack.urls.database_url
        user = asyncio.run(_load(database_url, args.passages, args.users))
        # Let the server finish loading its embedding model (in the background)
        # so it does not compete for the CPU with the first measurements.
        wait_until_idle(stack.server.pid)
        rows = asyncio.run(_measure(ADDRESS, user, database_url))
    rows.insert(
        0,
        (
            "library",
            f"{args.passages} passages, {args.users} users, "
            f"{args.passages // args.users} passages for the searching user",
        ),
    )
    for name, value in rows:
        print(f"{name:<30} {value}")
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "search",
            title="Search latency and throughput",
            command="python -m bench.search",
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings="goals: keyword p95 <= 10 ms, hybrid p95 <= 50 ms (query embedding "
            "included); client and server on the same machine",
            rows=rows,
        )


if __name__ == "__main__":
    main()
