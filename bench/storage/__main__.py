"""Blob storage: S3 (an embedded SeaweedFS) against the local data dir, same run.

    .venv/bin/python -m bench.storage [--upload-mb 256] [--minutes 10] [--record]

For each backend, the real stack (embedded Postgres and Valkey, the gRPC
server, two worker processes) with `REELSCRIBE_BLOB_BACKEND` set to it:

- upload throughput: one file of random bytes through `UploadMedia` (the
  Python client, 1 MiB messages), from the first byte to the stored media;
  and the same file as sequential `AppendUpload` calls of 1 MiB (what a
  browser sends), from the first call to the one that returns the media;
- the generated lecture end to end with tiny.en, from the first upload byte
  to the terminal event (as `bench.pipeline` times it).

The local backend is the baseline. SeaweedFS runs on the same machine, so the
S3 figures include its CPU on the same two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import grpc
import psutil
from reelscribe_client import ReelscribeClient

from bench.harness import bench_stack, wait_until_idle
from bench.lecture import lecture_text, make_lecture
from bench.pipeline.__main__ import ADDRESS, _timed_jobs
from bench.record import record
from reelscribe.auth import mint_token
from reelscribe.embedded_s3 import EmbeddedS3
from reelscribe.v1 import job_service_pb2, job_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"

SECRET = "bench-secret-" + "s" * 32
#: AppendUpload is measured for its capacity, not for its rate limit (100 calls/s).
RATE_ENV = {"REELSCRIBE_RATE_LIMITS": json.dumps({"AppendUpload": [100000, 100000]})}


async def _upload_mb_s(token: str, path: Path) -> float:
    async with ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
        t0 = time.perf_counter()
        media = await client.upload(path)
        seconds = time.perf_counter() - t0
        assert media.size_bytes == path.stat().st_size
        await client.delete_media(media.name)
    return path.stat().st_size / 1e6 / seconds


async def _append_mb_s(token: str, path: Path) -> float:
    """Sequential 1 MiB `AppendUpload` calls, as a browser makes them."""
    data = path.read_bytes()
    header = job_service_pb2.UploadHeader(
        filename=path.name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=str(uuid.uuid4()),
    )
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(ADDRESS) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        t0 = time.perf_counter()
        for offset in range(0, len(data), 1024 * 1024):
            header.offset_bytes = offset
            reply = await stub.AppendUpload(
                job_service_pb2.AppendUploadRequest(
                    header=header, data=data[offset : offset + 1024 * 1024]
                ),
                metadata=metadata,
                timeout=120,
            )
        seconds = time.perf_counter() - t0
        assert reply.media.size_bytes == len(data)
        await stub.DeleteMedia(
            job_service_pb2.DeleteMediaRequest(name=reply.media.name), metadata=metadata
        )
    return len(data) / 1e6 / seconds


def _run(
    backend: str, env: dict[str, str], big: Path, lecture: Path, reference: str
) -> tuple[float, float, float, float]:
    """(upload MB/s, lecture wall s, lecture CPU-s, AppendUpload MB/s) on one backend."""
    with bench_stack(ADDRESS, SECRET, workers=(2, 1), extra_env=env) as (stack, data_dir):
        assert stack.worker is not None
        wait_until_idle(stack.server.pid)
        token = mint_token(SECRET, "bench")
        upload = max(asyncio.run(_upload_mb_s(token, big)) for _ in range(2))
        append = max(asyncio.run(_append_mb_s(token, big)) for _ in range(2))
        procs = [psutil.Process(stack.server.pid), psutil.Process(stack.worker.pid)]
        runs, _ = asyncio.run(
            _timed_jobs(token, lecture, reference, ["tiny.en"], 2, procs, data_dir, False)
        )
        run = runs["tiny.en"]
        print(
            f"  {backend}: upload {upload:.0f} MB/s (AppendUpload {append:.0f} MB/s), "
            f"lecture {run.wall_s:.1f} s "
            f"({run.cpu_s:.1f} CPU-s, WER {run.wer * 100:.1f} %)",
            flush=True,
        )
        return upload, run.wall_s, run.cpu_s, append


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-mb", type=int, default=256)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    lecture = make_lecture(OUT / f"lecture-{args.minutes:g}min.ogg", args.minutes)
    reference = lecture_text(args.minutes)
    with tempfile.TemporaryDirectory(prefix="reelscribe-bench-s3-") as tmp:
        big = Path(tmp) / "upload.bin"
        with big.open("wb") as out:
            for _ in range(args.upload_mb):
                out.write(os.urandom(1024 * 1024))
        local = _run(
            "local", {"REELSCRIBE_BLOB_BACKEND": "local", **RATE_ENV}, big, lecture, reference
        )
        seaweed = EmbeddedS3(Path(tmp) / "s3")
        seaweed.start()
        try:
            endpoint = seaweed.endpoint
            env = {
                "REELSCRIBE_BLOB_BACKEND": "s3",
                "REELSCRIBE_S3_ENDPOINT_URL": endpoint.endpoint_url,
                "REELSCRIBE_S3_BUCKET": endpoint.bucket,
                "REELSCRIBE_S3_ACCESS_KEY_ID": endpoint.access_key_id,
                "REELSCRIBE_S3_SECRET_ACCESS_KEY": endpoint.secret_access_key,
                **RATE_ENV,
            }
            s3 = _run("s3", env, big, lecture, reference)
        finally:
            seaweed.stop()
    rows = [
        (f"upload of {args.upload_mb} MB, local data dir (baseline)", f"{local[0]:.0f} MB/s"),
        (f"upload of {args.upload_mb} MB, S3 (SeaweedFS)", f"{s3[0]:.0f} MB/s"),
        (
            f"AppendUpload of {args.upload_mb} MB in 1 MiB calls, local data dir (baseline)",
            f"{local[3]:.0f} MB/s",
        ),
        (
            f"AppendUpload of {args.upload_mb} MB in 1 MiB calls, S3 (SeaweedFS)",
            f"{s3[3]:.0f} MB/s",
        ),
        (
            "lecture end to end, local data dir (baseline)",
            f"{local[1]:.1f} s, {local[2]:.1f} CPU-s",
        ),
        ("lecture end to end, S3 (SeaweedFS)", f"{s3[1]:.1f} s, {s3[2]:.1f} CPU-s"),
        ("lecture, S3 / local", f"{s3[1] / local[1]:.2f} (goal <= 1.05)"),
    ]
    for name, value in rows:
        print(f"{name}: {value}")
    if args.record:
        record(
            "storage",
            title="Blob storage: S3 against the local data dir",
            command=f"python -m bench.storage --upload-mb {args.upload_mb}",
            machine=(
                f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
            ),
            day=date.today().isoformat(),
            settings=(
                "the real stack with 2 worker processes x 1 thread, tiny.en; SeaweedFS 4.48 "
                "on the same machine; UploadMedia and AppendUpload (its rate limit raised) each "
                "best of 2; lecture "
                "from the first upload byte to the terminal event; CPU-s of the server and "
                "workers (not of SeaweedFS)"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
