"""Search latency and throughput: an everyday user, then a heavy one.

    .venv/bin/python -m bench.search [--scale 1.0] [--skip-heavy] [--record]

Loads passages for many users and jobs straight into Postgres (see
bench/search/library.py: real MiniLM embeddings of generated sentences,
jittered per row), starts the real server, and measures Search through gRPC
per mode: p50/p95 latency of sequential queries (query embedding included)
and throughput with 16 concurrent clients. Then, without gRPC, each mode's
SQL on its own (for the heavy user also the keyword plan that ranks every
match, the baseline of reelscribe/db/search_topk.py, and the HNSW walk that
reelscribe/db/search_vectors.py replaced, with its recall), the query
embedding on its own, and the semantic query's recall@50 against exact
search.

First the everyday library (100,000 passages over 100 users; the searching
user owns 1,000), which is the baseline; then the library grows to 1,000,000
passages, 100,000 of them one heavy user's, and that user is measured, and
the everyday user again. `--scale 0.1` divides every count by ten for a quick
run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date

import asyncpg
import numpy as np
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.record import record
from bench.search import library
from bench.search.library import Corpus
from reelscribe import db
from reelscribe.auth import mint_token
from reelscribe.db import search as search_db
from reelscribe.embeddings import get_embedder, to_pgvector

SECRET = "bench-secret-" + "s" * 32
ADDRESS = "127.0.0.1:50191"
HEAVY_USER = "heavy-user"
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


async def _load_small(conn: asyncpg.Connection, corpus: Corpus, passages: int, users: int) -> str:
    """The everyday library: `passages` spread evenly over `users` owners."""
    definitions = await library.drop_indexes(conn)
    await library.add_owner(conn, corpus, [f"user-{u}" for u in range(users)], passages, seed=1)
    took = await library.create_indexes(conn, definitions)
    print(f"{passages} passages loaded; indexes built, vacuumed, checkpointed in {took:.0f} s")
    return "user-7"


async def _load_heavy(conn: asyncpg.Connection, corpus: Corpus, heavy: int, others: int) -> str:
    """Grow the library: one owner with `heavy` passages, `others` over 900 more owners."""
    definitions = await library.drop_indexes(conn)
    t0 = time.perf_counter()
    await library.add_owner(conn, corpus, [HEAVY_USER], heavy, seed=2)
    await library.add_owner(conn, corpus, [f"other-{u}" for u in range(900)], others, seed=3)
    print(f"{heavy + others} passages added in {time.perf_counter() - t0:.0f} s")
    took = await library.create_indexes(conn, definitions)
    print(f"indexes built, tables vacuumed, checkpoint done in {took:.0f} s")
    return HEAVY_USER


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


async def _measure(
    address: str,
    user: str,
    url: str,
    label: str,
    *,
    throughput: bool = True,
    plain_baseline: bool = False,
) -> list[tuple[str, str]]:
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
            value = (
                f"p50 {_pct(latencies, 50) * 1000:.1f} ms, p95 {_pct(latencies, 95) * 1000:.1f} ms"
            )
            if throughput:
                done = await _throughput(client, mode, seconds=10.0, concurrency=16)
                value += f", {done / 10:.0f} queries/s at concurrency 16"
            rows.append((f"{label}: {name} via gRPC", value))
    rows += await _sql_alone(url, user, label, plain_baseline=plain_baseline)
    return rows


def _ms(latencies: list[float]) -> str:
    return f"p50 {_pct(latencies, 50) * 1000:.1f} ms, p95 {_pct(latencies, 95) * 1000:.1f} ms"


async def _timed(runs: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    latencies = []
    for i in range(runs):
        t0 = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - t0)
    return latencies


async def _sql_alone(
    url: str, user: str, label: str, *, plain_baseline: bool
) -> list[tuple[str, str]]:
    """The queries behind each mode timed directly in Postgres, the query
    embedding on its own, and the semantic query's recall against exact search."""
    rows: list[tuple[str, str]] = []
    filters = search_db.Filters(owner=user)
    embedder = get_embedder()
    vectors = [np.asarray(v, dtype=np.float32) for v in embedder.embed(QUERIES)]
    pool = await db.create_pool(url, max_size=1)
    async with pool.acquire() as conn:

        async def keyword(i: int) -> object:
            return await search_db.keyword(conn, QUERIES[i % len(QUERIES)], filters, 50)

        async def hybrid_keyword(i: int) -> object:
            return await search_db.keyword(
                conn, QUERIES[i % len(QUERIES)], filters, 50, min_coverage=0.51
            )

        async def semantic(i: int) -> object:
            return await search_db.semantic(conn, vectors[i % len(vectors)], filters, 50)

        rows.append((f"{label}: keyword SQL alone", _ms(await _timed(200, keyword))))
        rows.append(
            (
                f"{label}: hybrid's keyword SQL alone (> half the words)",
                _ms(await _timed(200, hybrid_keyword)),
            )
        )
        if plain_baseline:
            # The same queries ranking every match (the plan before top-k).
            search_db.TOP_K = False
            try:
                plain = await _timed(50, keyword)
            finally:
                search_db.TOP_K = True
            rows.append((f"{label}: keyword SQL alone, ranking every match", _ms(plain)))
        rows.append((f"{label}: semantic SQL alone", _ms(await _timed(100, semantic))))
        rows.append(
            (
                f"{label}: semantic recall@50 against exact search",
                _recall(await _recalls(conn, vectors, filters, user)),
            )
        )
        if plain_baseline:
            # The plan before search_vectors: the library-wide HNSW graph
            # walked in strict order until enough of the owner's rows pass.
            search_db.LARGE_SEMANTIC = False
            try:
                hnsw = await _timed(50, semantic)
                hnsw_recalls = await _recalls(conn, vectors, filters, user)
            finally:
                search_db.LARGE_SEMANTIC = True
            rows.append((f"{label}: semantic SQL alone, HNSW walk (plan before)", _ms(hnsw)))
            rows.append(
                (
                    f"{label}: semantic recall@50 against exact search, HNSW walk (plan before)",
                    _recall(hnsw_recalls),
                )
            )
    await pool.close()
    embeds = await _timed(
        100, lambda i: asyncio.to_thread(embedder.embed, [QUERIES[i % len(QUERIES)]])
    )
    rows.append((f"{label}: query embedding alone (same model, bench process)", _ms(embeds)))
    return rows


async def _recalls(
    conn: asyncpg.Connection,
    vectors: list[np.ndarray],
    filters: search_db.Filters,
    user: str,
) -> list[float]:
    """For each query, the share of the exact 50 nearest that semantic search returns."""
    recalls = []
    for vector in vectors:
        approximate = await search_db.semantic(conn, vector, filters, 50)
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")  # no HNSW: exact
            exact = await conn.fetch(
                "SELECT job_id, idx FROM search_passages WHERE owner = $2"
                " ORDER BY embedding <=> $1::vector, job_id, idx LIMIT 50",
                to_pgvector(vector),
                user,
            )
        wanted = {(r["job_id"], r["idx"]) for r in exact}
        got = {(r["job_id"], r["idx"]) for r in approximate}
        recalls.append(len(wanted & got) / max(1, len(wanted)))
    return recalls


def _recall(recalls: list[float]) -> str:
    return (
        f"mean {sum(recalls) / len(recalls):.3f}, lowest {min(recalls):.2f}"
        f" ({len(recalls)} queries)"
    )


async def _run(args: argparse.Namespace, url: str, pid: int) -> list[tuple[str, str]]:
    small_passages = round(100_000 * args.scale)
    heavy = round(100_000 * args.scale)
    others = round(1_000_000 * args.scale) - small_passages - heavy
    corpus = await Corpus.make(_sentences, 2000)
    pool = await db.create_pool(url, max_size=2)
    async with pool.acquire() as conn:
        small = await _load_small(conn, corpus, small_passages, args.users)
    # Let the server finish loading its embedding model (in the background)
    # so it does not compete for the CPU with the first measurements.
    await asyncio.to_thread(wait_until_idle, pid)
    base = f"{small_passages // args.users} of {small_passages}"
    rows = [("library", f"{small_passages} passages, {args.users} users")]
    rows += await _measure(ADDRESS, small, url, f"baseline, user with {base}")
    if args.skip_heavy:
        return rows
    async with pool.acquire() as conn:
        user = await _load_heavy(conn, corpus, heavy, others)
    await pool.close()
    total = small_passages + heavy + others
    rows.append(
        (
            "library grown",
            f"{total} passages, {args.users + 901} users; heavy user owns {heavy}",
        )
    )
    rows += await _measure(
        ADDRESS, user, url, f"heavy user, {heavy} of {total}", plain_baseline=True
    )
    rows += await _measure(
        ADDRESS,
        small,
        url,
        f"same small user, {small_passages // args.users} of {total}",
        throughput=False,
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1.0: 100,000 passages, then a heavy user's 100,000 in a 1,000,000-passage library",
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--skip-heavy", action="store_true", help="only the everyday library")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    env = {"REELSCRIBE_RATE_LIMIT_PER_S": "100000", "REELSCRIBE_RATE_LIMIT_BURST": "100000"}
    with bench_stack(ADDRESS, SECRET, extra_env=env) as (stack, _):
        rows = asyncio.run(_run(args, stack.urls.database_url, stack.server.pid))
    for name, value in rows:
        print(f"{name:<50} {value}")
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "search",
            title="Search latency and throughput",
            command="python -m bench.search",
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings="goals: keyword p95 <= 10 ms, hybrid p95 <= 50 ms (query embedding "
            "included), also for a heavy user owning 100,000 passages of 1,000,000; sequential "
            "queries (200 per mode) for latency; client and server on the same machine",
            rows=rows,
        )


if __name__ == "__main__":
    main()
