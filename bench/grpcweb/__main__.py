"""gRPC-Web vs native gRPC: N watchers of one job's events, on one server.

    .venv/bin/python -m bench.grpcweb [--watchers 100] [--events 30] [--record]

Starts the real stack (embedded Postgres and Valkey, one server with its
gRPC-Web listener) and, one pass each, opens N WatchJob streams on a job
natively (the baseline: 100 streams per HTTP/2 connection) or over gRPC-Web
(one HTTP/1.1 connection each, as N browser pages would hold), appends events
to the job's log as a worker does (Postgres, then Redis), and measures per
delivered message the delay from the event's timestamp to its arrival, and the
server process's CPU per delivered message.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import time
import uuid
from datetime import date

import aiohttp
import grpc
import psutil

from bench.fanout.__main__ import _percentile, publish_events
from bench.harness import bench_stack, wait_until_idle
from bench.record import record
from reelscribe import db, redis_client
from reelscribe.auth import mint_token
from reelscribe.db import jobs as jobs_db
from reelscribe.options import JobOptions
from reelscribe.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.support.grpcweb import WebClient, frames

SECRET = "bench-secret-" + "e" * 32
ADDRESS = "127.0.0.1:50181"
WEB_ADDRESS = "127.0.0.1:50182"
STREAMS_PER_CHANNEL = 100


def _progress_latency(event: job_pb2.JobEvent) -> float | None:
    if event.kind != job_pb2.JOB_EVENT_KIND_PROGRESS:
        return None
    return time.time() - event.time.ToMicroseconds() / 1e6


async def _native(name: str, n: int, token: str, opened: asyncio.Queue[None]) -> list[float]:
    channels = [grpc.aio.insecure_channel(ADDRESS) for _ in range(math.ceil(n / 100))]
    metadata = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []

    async def watch(i: int) -> None:
        stub = job_service_pb2_grpc.JobServiceStub(channels[i // STREAMS_PER_CHANNEL])
        call = stub.WatchJob(job_service_pb2.WatchJobRequest(name=name), metadata=metadata)
        async for reply in call:
            if reply.event.kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT:
                opened.put_nowait(None)
            elif (latency := _progress_latency(reply.event)) is not None:
                latencies.append(latency)

    await asyncio.gather(*(watch(i) for i in range(n)))
    for channel in channels:
        await channel.close()
    return latencies


async def _web(name: str, n: int, token: str, opened: asyncio.Queue[None]) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)  # one connection per stream, as pages hold them
    async with aiohttp.ClientSession(connector=connector) as session:
        client = WebClient(session, f"http://{WEB_ADDRESS}", token)

        async def watch() -> None:
            request = job_service_pb2.WatchJobRequest(name=name)
            async with client.open("reelscribe.v1.JobService/WatchJob", request) as response:
                async for flags, payload in frames(response):
                    if flags & 0x80:
                        return
                    event = job_service_pb2.WatchJobResponse.FromString(payload).event
                    if event.kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT:
                        opened.put_nowait(None)
                    elif (latency := _progress_latency(event)) is not None:
                        latencies.append(latency)

        await asyncio.gather(*(watch() for _ in range(n)))
    return latencies


async def _measure(
    kind: str,
    database_url: str,
    redis_url: str,
    server_pid: int,
    n: int,
    count: int,
    interval_s: float,
) -> tuple[list[float], float]:
    pool = await db.create_pool(database_url)
    redis = redis_client.connect(redis_url)
    try:
        job_id = uuid.uuid4()
        async with pool.acquire() as conn:
            await jobs_db.insert_job(
                conn,
                job_id=job_id,
                owner="bench",
                request_id=None,
                request_hash="",
                media_id=None,
                source_uri="https://example.com/talk.mp4",
                parent_id=None,
                options=JobOptions(),
                labels={},
                pending_message_id=None,
            )
            await conn.execute(
                "UPDATE jobs SET state = 'RUNNING', stage = 'TRANSCRIBE' WHERE id = $1", job_id
            )
        token = mint_token(SECRET, "bench")
        opened: asyncio.Queue[None] = asyncio.Queue()
        name = f"jobs/{job_id}"
        watchers = _native if kind == "native" else _web
        watching = asyncio.create_task(watchers(name, n, token, opened))
        for _ in range(n):
            await asyncio.wait_for(opened.get(), 120)
        await asyncio.sleep(0.5)
        proc = psutil.Process(server_pid)
        cpu0 = sum(proc.cpu_times()[:2])
        await publish_events(pool, redis, job_id, count, interval_s)
        latencies = await asyncio.wait_for(watching, 120)
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        return latencies, cpu
    finally:
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=100, help="of each kind")
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between events")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    env = {
        "REELSCRIBE_WEB_LISTEN": WEB_ADDRESS,
        "REELSCRIBE_WATCH_BUFFER_EVENTS": "1024",
        # One user opens every watch: neither its rate limit nor its stream cap is measured.
        "REELSCRIBE_RATE_LIMIT_PER_S": "100000",
        "REELSCRIBE_RATE_LIMIT_BURST": "100000",
        "REELSCRIBE_MAX_STREAMS_PER_USER": str(4 * args.watchers),
    }
    n = args.watchers
    results: dict[str, tuple[list[float], float]] = {}
    with bench_stack(ADDRESS, SECRET, extra_env=env) as (stack, _):
        wait_until_idle(stack.server.pid)
        for kind in ("native", "web"):
            results[kind] = asyncio.run(
                _measure(
                    kind,
                    stack.urls.database_url,
                    stack.urls.redis_url,
                    stack.server.pid,
                    n,
                    args.events,
                    args.interval,
                )
            )
    rows = [
        (
            f"{n} watchers, {label}",
            f"p50 {_percentile(lat, 50) * 1000:.1f} ms, p99 {_percentile(lat, 99) * 1000:.1f} ms, "
            f"{cpu / len(lat) * 1e6:.0f} µs server CPU per message, {len(lat)} messages",
        )
        for label, (lat, cpu) in (
            ("native gRPC (baseline)", results["native"]),
            ("gRPC-Web", results["web"]),
        )
    ]
    ratio = _percentile(results["web"][0], 99) / _percentile(results["native"][0], 99)
    rows.append((f"{n} watchers, p99 ratio gRPC-Web / native", f"{ratio:.2f}"))
    for name, value in rows:
        print(f"{name:<46} {value}", flush=True)
    if args.record:
        cores = os.cpu_count() or 1
        load = os.getloadavg()[0]
        record(
            "grpcweb",
            title="gRPC-Web: watchers of one job's events, beside native gRPC",
            command="python -m bench.grpcweb "
            + " ".join(a for a in sys.argv[1:] if a != "--record"),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{args.events} events, one every {args.interval * 1000:.0f} ms; one server; "
                f"a pass of {n} native watchers (100 streams per HTTP/2 connection), then one of "
                f"{n} gRPC-Web watchers (one HTTP/1.1 connection each), each in one client "
                f"process; 1-minute load average at the end {load:.1f}"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
