"""Abandoned resumable uploads expire: their rows and partial files are swept,
their reservation of the storage quota ends, and GetUpload says they expired."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from reelscribe import db, partials, redis_client
from reelscribe import uploads as upload_store
from reelscribe.blobs import BlobStore
from reelscribe.config import Settings
from reelscribe.v1 import job_service_pb2
from server import partsweep
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.processes import WorkerProcess
from tests.support.uploads import abandon_upload


class Store:
    """The stack's database, Redis and blob store, as the sweeper sees them."""

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.blobs = BlobStore(settings.blob_dir)

    def part(self, user: str, upload_id: str) -> Path:
        return partials.part_path(self.blobs, user, upload_id)


@pytest.fixture
async def store(settings: Settings, server: ServerApp) -> AsyncIterator[Store]:
    redis = redis_client.connect(settings.redis_url)
    yield Store(settings, redis)
    await redis.aclose()


async def _status(api: Api, upload_id: str) -> job_service_pb2.GetUploadResponse:
    return await api.jobs.GetUpload(
        job_service_pb2.GetUploadRequest(upload_id=upload_id), metadata=api.metadata, timeout=30
    )


async def _expired(api: Api, upload_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _status(api, upload_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err.value)["ErrorInfo"].reason == "UPLOAD_EXPIRED"  # type: ignore[attr-defined]
    assert "expired" in (err.value.details() or "")


async def _age(server: ServerApp, user: str, upload_id: str, seconds: float) -> None:
    async with server.deps.pool.acquire() as conn:
        await conn.execute(
            "UPDATE uploads SET update_time = now() - make_interval(secs => $3)"
            " WHERE owner = $1 AND upload_id = $2",
            user,
            upload_id,
            seconds,
        )


async def test_the_sweep_removes_idle_uploads_and_their_bytes(
    api: Api, user: str, server: ServerApp, store: Store
) -> None:
    expiry_s = store.settings.upload_expiry_s
    idle, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    data = b"z" * 5000
    await abandon_upload(api, data, 2000, idle)
    await abandon_upload(api, data, 1000, fresh)
    assert (await _status(api, idle)).stored_bytes == 2000
    assert store.part(user, idle).stat().st_size == 2000

    # Idle for longer than the expiry: expired at once, even before a sweep.
    await _age(server, user, idle, expiry_s + 60)
    await _expired(api, idle)

    pool = await db.create_pool(store.settings.database_url, max_size=2)
    try:
        keeper = partials.LocalPartials(pool, store.blobs, store.blobs)
        removed = await upload_store.sweep(pool, store.redis, keeper, idle_s=expiry_s)
        assert removed >= 1
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT upload_id FROM uploads WHERE owner = $1", user)
    finally:
        await pool.close()
    assert {r["upload_id"] for r in rows} == {fresh}
    assert not store.part(user, idle).exists()
    await _expired(api, idle)  # remembered after the row is gone
    # The upload that is still in use is left alone.
    assert store.part(user, fresh).stat().st_size == 1000
    assert (await _status(api, fresh)).stored_bytes == 1000

    # The id can start over, from 0.
    media = await api.upload_bytes(data, "partial.bin", upload_id=idle)
    assert media.size_bytes == len(data)
    assert (await _status(api, idle)).media.name == media.name


async def test_resuming_an_idle_upload_starts_it_over(
    api: Api, user: str, server: ServerApp, store: Store
) -> None:
    upload_id = str(uuid.uuid4())
    data = b"q" * 3000
    await abandon_upload(api, data, 1000, upload_id)
    await _age(server, user, upload_id, store.settings.upload_expiry_s + 60)
    header = job_service_pb2.UploadHeader(
        filename="partial.bin",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
        offset_bytes=1000,
    )

    async def rest():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=header)
        yield job_service_pb2.UploadMediaRequest(chunk=data[1000:])

    # Its bytes were removed: the right offset is now 0.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UploadMedia(rest(), metadata=api.metadata, timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "offset_bytes=0" in (err.value.details() or "")
    assert not store.part(user, upload_id).exists()
    media = await api.upload_bytes(data, "partial.bin", upload_id=upload_id)
    assert media.size_bytes == len(data)


async def test_a_worker_sweeps_on_its_own(
    api: Api, user: str, settings: Settings, store: Store, idle_queue: str, tmp_path: Path
) -> None:
    upload_id = str(uuid.uuid4())
    await abandon_upload(api, b"w" * 4000, 1500, upload_id)
    assert store.part(user, upload_id).exists()
    worker = WorkerProcess(
        settings.model_copy(update={"queue_name": idle_queue}),
        tmp_path / "worker.log",
        extra_env={
            "REELSCRIBE_UPLOAD_EXPIRY_S": "1",
            "REELSCRIBE_UPLOAD_SWEEP_INTERVAL_S": "0.5",
        },
        threads=1,
    )
    worker.start()
    try:
        for _ in range(120):
            if not store.part(user, upload_id).exists():
                break
            await asyncio.sleep(0.5)
    finally:
        worker.stop()
    assert not store.part(user, upload_id).exists(), (tmp_path / "worker.log").read_text()[-3000:]
    # The session server keeps uploads for a day: it learns of the expiry from the sweep.
    await _expired(api, upload_id)


def test_a_server_sweeps_idle_partial_files_from_its_own_disk(tmp_path: Path) -> None:
    """With S3 storage no worker sees a server's disk: the server removes its own
    partial files once no stream has written to them for the expiry."""
    uploads = tmp_path / "owner" / "uploads"
    uploads.mkdir(parents=True)
    idle, active = uploads / "idle.part", uploads / "active.part"
    idle.write_bytes(b"x" * 10)
    active.write_bytes(b"y" * 10)
    os.utime(idle, (time.time() - 100, time.time() - 100))
    other = tmp_path / "owner" / "media"
    other.mkdir()
    (other / "kept").write_bytes(b"z")
    os.utime(other / "kept", (0, 0))
    assert partsweep.sweep_parts(tmp_path, idle_s=60) == 1
    assert not idle.exists() and active.exists() and (other / "kept").exists()
