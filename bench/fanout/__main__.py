"""Fan-out: N watchers of one job's events, vs a bare grpc.aio streaming server.

    .venv/bin/python -m bench.fanout [--watchers 100 1000] [--events 30] [--record]

For each N: start the real server (embedded Postgres and Valkey), open N
WatchJob streams on one job, append events to its log from this process (as a
worker does: Postgres, then Redis) and measure, per delivered message, the
delay from the event's timestamp to its arrival at the watcher, and the
server process's CPU per delivered message. Then the same N watchers against
a bare grpc.aio server that broadcasts events of the same size from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import date
from typing import Any

import grpc
import psutil

from bench.harness import bench_stack, wait_until_idle
from bench.record import record
from cli.stack import RunningStack
from reelscribe import db, events, redis_client
from reelscribe.auth import mint_token
from reelscribe.db import events as events_db
from reelscribe.db import jobs as jobs_db
from reelscribe.options import JobOptions
from reelscribe.states import JobState
from reelscribe.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

SECRET = "bench-secret-" + "f" * 32
ADDRESS = "127.0.0.1:50171"
STREAMS_PER_CHANNEL = 100


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


async def _watchers(
    address: str, name: str, n: int, token: str | None, ready: asyncio.Event
) -> list[float]:
    """Open n watches; returns delivery latencies (seconds) of progress events."""
    channels = [
        grpc.aio.insecure_channel(address) for _ in range(math.ceil(n / STREAMS_PER_CHANNEL))
    ]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    latencies: list[float] = []
    snapshots = 0

    async def watch(i: int) -> None:
        nonlocal snapshots
        stub = job_service_pb2_grpc.JobServiceStub(channels[i // STREAMS_PER_CHANNEL])
        call = stub.WatchJob(
            job_service_pb2.WatchJobRequest(name=name), metadata=metadata, timeout=300
        )
        async for reply in call:
            event = reply.event
            if event.kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT:
                snapshots += 1
                if snapshots == n:
                    ready.set()
            elif event.kind == job_pb2.JOB_EVENT_KIND_PROGRESS:
                latencies.append(time.time() - event.time.ToMicroseconds() / 1e6)

    await asyncio.gather(*(watch(i) for i in range(n)))
    for ch in channels:
        await ch.close()
    return latencies


def _reelscribe(n: int, count: int, interval_s: float) -> tuple[list[float], float]:
    # One user opens every watch: raise its rate limit so the limiter is not measured.
    env = {
        "REELSCRIBE_WATCH_BUFFER_EVENTS": "1024",
        "REELSCRIBE_RATE_LIMIT_PER_S": "100000",
        "REELSCRIBE_RATE_LIMIT_BURST": "100000",
    }
    with bench_stack(ADDRESS, SECRET, extra_env=env) as (stack, _):
        # The server loads the search model in the background after it starts
        # serving; that start-up work must not land in the measurement.
        wait_until_idle(stack.server.pid)
        return asyncio.run(_fan_out(stack, n, count, interval_s))


async def publish_events(
    pool: Any, redis: Any, job_id: uuid.UUID, count: int, interval_s: float
) -> None:
    """Record and publish `count` progress events of `job_id`, `interval_s` apart,
    then a terminal one that ends every watch."""
    for i in range(1, count + 1):
        async with pool.acquire() as conn:
            recorded = await events_db.append_event(
                conn,
                job_id,
                kind=job_pb2.JOB_EVENT_KIND_PROGRESS,
                set_fields={"progress": i / count},
                message=f"progress {i}",
            )
        assert recorded is not None
        await events.publish(redis, recorded)
        await asyncio.sleep(interval_s)
    async with pool.acquire() as conn:
        final = await events_db.append_event(
            conn,
            job_id,
            kind=job_pb2.JOB_EVENT_KIND_STATE_CHANGED,
            set_fields={"state": JobState.CANCELLED},
            message="done",
        )
    assert final is not None
    await events.publish(redis, final)


async def _fan_out(
    stack: RunningStack, n: int, count: int, interval_s: float
) -> tuple[list[float], float]:
    pool = await db.create_pool(stack.urls.database_url)
    redis = redis_client.connect(stack.urls.redis_url)
    server = stack.server
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
                "UPDATE jobs SET state = 'RUNNING', stage = 'TRANSCRIBE' WHERE id = $1",
                job_id,
            )
        ready = asyncio.Event()
        token = mint_token(SECRET, "bench")
        watching = asyncio.create_task(_watchers(ADDRESS, f"jobs/{job_id}", n, token, ready))
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)
        proc = psutil.Process(server.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        await publish_events(pool, redis, job_id, count, interval_s)
        latencies = await asyncio.wait_for(watching, 120)
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        return latencies, cpu
    finally:
        await redis.aclose()
        await pool.close()


async def _baseline(n: int, count: int, interval_s: float) -> tuple[list[float], float]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fanout.baseline",
            "50172",
            str(n),
            str(count),
            str(interval_s),
        ]
    )
    try:
        await asyncio.to_thread(_wait_port, 50172)
        proc = psutil.Process(server.pid)
        ready = asyncio.Event()
        watching = asyncio.create_task(_watchers("127.0.0.1:50172", "jobs/x", n, None, ready))
        await asyncio.wait_for(ready.wait(), 120)
        cpu0 = sum(proc.cpu_times()[:2])
        latencies = await asyncio.wait_for(watching, 120)
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        return latencies, cpu
    finally:
        server.wait(30)


def _wait_port(port: int) -> None:
    import socket

    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between events")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    for n in args.watchers:
        ours, our_cpu = _reelscribe(n, args.events, args.interval)
        base, base_cpu = asyncio.run(_baseline(n, args.events, args.interval))
        for label, lat, cpu in (("Reelscribe", ours, our_cpu), ("bare grpc.aio", base, base_cpu)):
            rows.append(
                (
                    f"{n} watchers, {label}",
                    f"p50 {_percentile(lat, 50) * 1000:.1f} ms, "
                    f"p99 {_percentile(lat, 99) * 1000:.1f} ms, "
                    f"{cpu / len(lat) * 1e6:.0f} µs server CPU per message, "
                    f"{len(lat)} messages",
                )
            )
        ratio = _percentile(ours, 99) / _percentile(base, 99)
        rows.append((f"{n} watchers, p99 ratio", f"{ratio:.2f}"))
        for name, value in rows[-3:]:
            print(f"{name:<34} {value}", flush=True)
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "fanout",
            title="Fan-out: watchers of one job's events",
            command="python -m bench.fanout "
            + " ".join(a for a in sys.argv[1:] if a != "--record"),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{args.events} events, one every {args.interval * 1000:.0f} ms; "
                "watchers in one client process, 100 streams per connection; "
                "goals: 100 watchers p99 <= 25 ms, 1000 watchers p99 <= 1.2 x baseline"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
