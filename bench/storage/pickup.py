"""How soon a stage starts on pool B after pool A is SIGKILLed, with blobs in S3.

    .venv/bin/python -m bench.storage.pickup [--heartbeat-timeout-s 60] [--record]

An embedded SeaweedFS, Postgres and Valkey, a server, and two worker pools
(one process, one thread each) with data directories of their own, sharing
only the services and the bucket. The generated 10-minute lecture is split
into chunks; once both pools are transcribing one, pool A's whole process
group is SIGKILLed. Measured: seconds from the kill until the chunk A held is
claimed again (its attempt count rises in Postgres), and until the job ends.
The wait is the broker's lease (`broker_heartbeat_timeout_s`, then a
redelivery sweep, `broker_maintenance_chance`), plus the rest of B's current
chunk; the job must still succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.lecture import make_lecture
from bench.pipeline.__main__ import ADDRESS
from bench.record import record
from cli.stack import child_env, worker_command
from reelscribe.auth import mint_token
from reelscribe.config import Settings
from reelscribe.embedded_s3 import EmbeddedS3

OUT = Path(__file__).resolve().parents[2] / "bench" / "out"
SECRET = "bench-secret-" + "p" * 32


async def _in_progress(conn: asyncpg.Connection, job_id: uuid.UUID) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT idx, attempts FROM chunks WHERE job_id = $1 AND state = 'PENDING' AND attempts > 0",
        job_id,
    )
    return {r["idx"]: r["attempts"] for r in rows}


async def _measure(
    database_url: str, token: str, lecture: Path, pool_a: subprocess.Popen[bytes]
) -> tuple[float, float, str]:
    conn = await asyncpg.connect(database_url)
    try:
        async with ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
            media = await client.upload(lecture)
            job = await client.create_job(media=media.name, options=v1.JobOptions(skip_cache=True))
            job_id = uuid.UUID(job.name.split("/")[1])
            while len(held := await _in_progress(conn, job_id)) < 2:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # both well inside their chunks
            held = await _in_progress(conn, job_id)
            os.killpg(pool_a.pid, signal.SIGKILL)
            killed = time.monotonic()
            picked_up = None
            while picked_up is None:
                now = await conn.fetch("SELECT idx, attempts FROM chunks WHERE job_id = $1", job_id)
                if any(r["attempts"] > held.get(r["idx"], r["attempts"]) for r in now):
                    picked_up = time.monotonic() - killed
                await asyncio.sleep(0.05)
            final = None
            async for event in client.watch(job.name):
                final = event.job or final
            assert final is not None
            return picked_up, time.monotonic() - killed, str(final.state)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeat-timeout-s", type=float, default=60.0)
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    lecture = make_lecture(OUT / "lecture-10min.ogg", 10.0)
    with tempfile.TemporaryDirectory(prefix="reelscribe-bench-pickup-") as tmp:
        seaweed = EmbeddedS3(Path(tmp) / "s3")
        seaweed.start()
        endpoint = seaweed.endpoint
        s3_env = {
            "REELSCRIBE_BLOB_BACKEND": "s3",
            "REELSCRIBE_S3_ENDPOINT_URL": endpoint.endpoint_url,
            "REELSCRIBE_S3_BUCKET": endpoint.bucket,
            "REELSCRIBE_S3_ACCESS_KEY_ID": endpoint.access_key_id,
            "REELSCRIBE_S3_SECRET_ACCESS_KEY": endpoint.secret_access_key,
            "REELSCRIBE_BROKER_HEARTBEAT_TIMEOUT_S": str(args.heartbeat_timeout_s),
            "REELSCRIBE_WORKER_METRICS_PORT": "0",
        }
        pools: list[subprocess.Popen[bytes]] = []
        try:
            with bench_stack(ADDRESS, SECRET, extra_env=s3_env) as (stack, data_dir):
                wait_until_idle(stack.server.pid)
                settings = Settings(data_dir=data_dir, jwt_secret=SECRET)
                base = child_env(settings, stack.urls.database_url, stack.urls.redis_url)
                for name in ("pool-a", "pool-b"):
                    own = Path(tmp) / name
                    own.mkdir()
                    env = {**base, **s3_env, "REELSCRIBE_DATA_DIR": str(own)}
                    with (own / "worker.log").open("ab") as log:
                        pools.append(
                            subprocess.Popen(
                                worker_command(1, 1),
                                env=env,
                                stdout=log,
                                stderr=log,
                                start_new_session=True,
                            )
                        )
                time.sleep(10)  # both pools import and connect
                token = mint_token(SECRET, "bench")
                picked_s, end_s, state = asyncio.run(
                    _measure(stack.urls.database_url, token, lecture, pools[0])
                )
        finally:
            for proc in pools:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            seaweed.stop()
    rows = [
        ("broker heartbeat timeout (setting)", f"{args.heartbeat_timeout_s:g} s"),
        ("pool A SIGKILLed -> its chunk claimed by pool B", f"{picked_s:.1f} s"),
        ("pool A SIGKILLed -> job ended", f"{end_s:.1f} s, {state}"),
    ]
    for name, value in rows:
        print(f"{name}: {value}")
    if args.record:
        record(
            "storage_pickup",
            title="Blob storage: a stage picked up on another pool after a SIGKILL (S3)",
            command=(
                f"python -m bench.storage.pickup --heartbeat-timeout-s {args.heartbeat_timeout_s:g}"
            ),
            machine=(
                f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
            ),
            day=date.today().isoformat(),
            settings=(
                "SeaweedFS, server and two worker pools (1 process x 1 thread, own data dirs) on "
                "one machine; tiny.en; the 10-min lecture; broker_maintenance_chance default"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
