"""Blob storage in S3, against a real SeaweedFS started for this module.

The store on its own (multipart puts, ranged reads, refusals), then a stack
whose server and two worker pools each have a data directory of their own and
share nothing but Postgres, Valkey and the bucket: a job's chunks land on both
pools, one pool is SIGKILLed mid-job, and the job still completes once with
the same segments as a clean run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from cli.doctor import Status, check_blob_store
from reelscribe.blobs import owner_prefix
from reelscribe.embedded_s3 import EmbeddedS3, S3Endpoint
from reelscribe.errors import Unavailable
from reelscribe.s3store import MULTIPART_PART_BYTES, S3BlobStore, S3ConfigError
from reelscribe.v1 import job_pb2, job_service_pb2
from reelscribe.v1 import transcript_service_pb2 as tpb
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.clips import decoded_seconds, read_clip
from tests.support.drills_stack import DrillStack, s3_drill_stack
from tests.support.mediagen import lecture_wav
from tests.support.processes import WorkerProcess
from tests.support.tokens import token_for
from workers.supervisor import EX_CONFIG


@pytest.fixture(scope="module")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seaweed(seaweed_server: EmbeddedS3) -> S3Endpoint:
    return seaweed_server.endpoint


def _store(endpoint: S3Endpoint, **overrides: str) -> S3BlobStore:
    fields: dict[str, Any] = {
        "bucket": endpoint.bucket,
        "endpoint_url": endpoint.endpoint_url,
        "access_key_id": endpoint.access_key_id,
        "secret_access_key": endpoint.secret_access_key,
        **overrides,
    }
    return S3BlobStore(**fields)


# -- the store ----------------------------------------------------------------------------


def test_multipart_put_ranged_reads_and_prefix_delete(seaweed: S3Endpoint, tmp_path: Path) -> None:
    store = _store(seaweed)
    payload = os.urandom(MULTIPART_PART_BYTES + 3 * 1024 * 1024)  # two parts
    src = tmp_path / "audio.f32"
    src.write_bytes(payload)
    store.put_file("t/work/job/audio.f32", src)
    assert not src.exists()  # moved into the store
    assert store.size("t/work/job/audio.f32") == len(payload)

    # A range lands at its own offset of a sparse local file.
    dest = tmp_path / "chunk.f32"
    start, length = 5_000_003, 1_234_567
    assert store.download("t/work/job/audio.f32", dest, start=start, length=length) == length
    data = dest.read_bytes()
    assert data[start : start + length] == payload[start : start + length]
    assert data[:start] == bytes(start)

    tail = b"".join(store.stream("t/work/job/audio.f32", start=len(payload) - 100_000))
    assert tail == payload[-100_000:]

    second = tmp_path / "other"
    second.write_bytes(b"x")
    store.put_file("t/work/job/other", second)
    assert store.delete_prefix("t/work/job/") == 2
    assert store.size("t/work/job/audio.f32") is None
    with pytest.raises(FileNotFoundError):
        store.download("t/work/job/audio.f32", tmp_path / "gone")


def test_wrong_credentials_and_missing_bucket_name_the_setting(seaweed: S3Endpoint) -> None:
    with pytest.raises(S3ConfigError, match="REELSCRIBE_S3_SECRET_ACCESS_KEY"):
        _store(seaweed, secret_access_key="not-the-secret").check()
    with pytest.raises(S3ConfigError, match="REELSCRIBE_S3_BUCKET"):
        _store(seaweed, bucket="no-such-bucket").check()
    _store(seaweed).check()


def test_unreachable_store_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    store = S3BlobStore(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="a",
        secret_access_key="b",
    )
    with pytest.raises(Unavailable) as caught:
        store.check()
    assert caught.value.reason == "BLOB_STORE_UNAVAILABLE"


# -- a shared-nothing stack ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(seaweed: S3Endpoint) -> Iterator[DrillStack]:
    with s3_drill_stack("s3", seaweed) as stack:
        yield stack


def _pool(stack: DrillStack, name: str) -> WorkerProcess:
    """A worker with a data directory no other process uses."""
    settings = stack.settings.model_copy(update={"data_dir": stack.data_dir / name})
    settings.data_dir.mkdir()
    worker = WorkerProcess(
        settings, stack.data_dir / f"worker-{name}.log", extra_env=stack.worker_env, threads=1
    )
    stack.workers.append(worker)
    worker.start()
    return worker


@pytest.fixture(scope="module")
async def server(shared: DrillStack) -> AsyncIterator[ServerApp]:
    (shared.data_dir / "server").mkdir()
    app = await shared.start_server(data_dir=shared.data_dir / "server", clip_url_ttl_s=600)
    yield app
    await app.stop(grace_s=0.5)


async def _until_chunks_run(api: Api, name: str) -> None:
    """Return once the job's chunks are being transcribed (more than one)."""
    call = api.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=name), metadata=api.metadata, timeout=120
    )
    async for reply in call:
        if reply.event.job.stage == job_pb2.STAGE_TRANSCRIBE and reply.event.chunk_count > 1:
            break
    call.cancel()


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        data: bytes = reply.read()
    return data


def _keys(store: S3BlobStore, prefix: str) -> list[str]:
    listed = store._client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_stages_on_machines_that_share_only_the_bucket(
    shared: DrillStack, server: ServerApp, seaweed: S3Endpoint, tmp_path: Path
) -> None:
    pool_a = _pool(shared, "pool-a")
    _pool(shared, "pool-b")
    store = _store(seaweed)
    user = f"s3-{os.urandom(4).hex()}"
    lecture = lecture_wav(tmp_path / "lecture-44s.wav", repeat=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        api = Api(channel, token_for(user))
        media = await api.upload(lecture)
        # The media is in the bucket, not on the server's disk.
        media_key = f"{owner_prefix(user)}/media/{media.name.split('/')[1]}"
        assert store.size(media_key) == lecture.stat().st_size
        assert not [p for p in _files(shared.data_dir / "server") if "media" in p.parts]

        clean = await api.run(media.name, skip_cache=True)
        assert clean.state == job_pb2.JOB_STATE_SUCCEEDED, clean.error
        expected = [
            (s.start_seconds, s.end_seconds, s.text)
            for s in (await api.transcript(clean.name)).segments
        ]
        assert len(expected) > 2
        # Both pools transcribed chunks of it (each logs the jobs it works on).
        job_id = clean.name.split("/")[1]
        for log in ("worker-pool-a.log", "worker-pool-b.log"):
            assert job_id in (shared.data_dir / log).read_text(errors="replace"), log

        # Again, with pool A killed while chunks are in flight.
        job = await api.create(media.name, skip_cache=True)
        await _until_chunks_run(api, job.name)
        await asyncio.sleep(0.5)
        pool_a.signal_all(signal.SIGKILL)
        final = (await api.watch(job.name))[-1].job
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
        again = [
            (s.start_seconds, s.end_seconds, s.text)
            for s in (await api.transcript(job.name)).segments
        ]
        assert again == expected

        # A clip rendered on a pool, stored in the bucket, read through the server.
        child = await api.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(
                request_id=str(uuid.uuid4()),
                parent=clean.name,
                options=job_pb2.JobOptions(
                    extra_stages=[job_pb2.STAGE_RENDER_CLIPS], highlight_count=1
                ),
            ),
            metadata=api.metadata,
            timeout=30,
        )
        done = (await api.watch(child.job.name))[-1].job
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done.error
        [highlight] = (
            await api.transcripts.ListHighlights(
                tpb.ListHighlightsRequest(name=done.name), metadata=api.metadata, timeout=30
            )
        ).highlights
        clip = await read_clip(api, highlight.name)
        assert len(clip) == highlight.clip_size_bytes
        seconds, _ = decoded_seconds(clip)
        assert abs(seconds - (highlight.end_seconds - highlight.start_seconds)) <= 0.5
        assert await read_clip(api, highlight.name, offset=1000) == clip[1000:]
        # The same bytes straight from the store, through the presigned URL.
        assert highlight.clip_url.startswith(seaweed.endpoint_url)
        assert highlight.clip_url_expire_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC)
        assert await asyncio.to_thread(_http_get, highlight.clip_url) == clip
        clip_prefix = f"{owner_prefix(user)}/clips/{done.name.split('/')[1]}/"
        assert _keys(store, clip_prefix)

        # Deleting the jobs and the media removes their blobs from the bucket too.
        await api.jobs.DeleteJob(
            job_service_pb2.DeleteJobRequest(name=clean.name), metadata=api.metadata, timeout=30
        )
        assert not _keys(store, clip_prefix)
        await api.jobs.DeleteMedia(
            job_service_pb2.DeleteMediaRequest(name=media.name), metadata=api.metadata, timeout=30
        )
        assert store.size(media_key) is None

    # The audio the stages shared is gone from the bucket.
    for done in (clean, job):
        assert store.size(f"{owner_prefix(user)}/work/{done.name.split('/')[1]}/audio.f32") is None
    # Pool B kept no scratch files; killed pool A did, and sweeps them when it
    # starts again (as its supervisor would start it).
    assert not [p for p in _files(shared.data_dir / "pool-b") if "work" in p.parts]
    assert [p for p in _files(shared.data_dir / "pool-a") if "work" in p.parts]
    for path in (shared.data_dir / "pool-a" / "work").glob("*/*"):
        os.utime(path, (0, 0))  # older than the sweep's minimum age
    pool_a.start()
    deadline = asyncio.get_running_loop().time() + 60
    while [p for p in _files(shared.data_dir / "pool-a") if "work" in p.parts]:
        assert asyncio.get_running_loop().time() < deadline, "pool A never swept its scratch"
        await asyncio.sleep(0.2)


async def test_refused_credentials_stop_the_server_and_the_worker(
    shared: DrillStack, tmp_path: Path
) -> None:
    wrong = shared.settings.model_copy(
        update={"s3_secret_access_key": SecretStr("not-the-secret"), "data_dir": tmp_path}
    )
    with pytest.raises(S3ConfigError, match="REELSCRIBE_S3_SECRET_ACCESS_KEY"):
        await ServerApp(wrong).start()
    worker = WorkerProcess(wrong, tmp_path / "worker.log", extra_env=shared.worker_env, threads=1)
    worker.start()
    assert worker.proc is not None
    assert worker.proc.wait(timeout=120) == EX_CONFIG
    assert "REELSCRIBE_S3_SECRET_ACCESS_KEY" in (tmp_path / "worker.log").read_text()


async def test_doctor_checks_the_store(shared: DrillStack) -> None:
    good = await check_blob_store(shared.settings)
    assert good.status is Status.OK, good
    wrong = shared.settings.model_copy(update={"s3_access_key_id": "nobody"})
    refused = await check_blob_store(wrong)
    assert refused.status is Status.FAIL and "REELSCRIBE_S3_ACCESS_KEY_ID" in refused.detail
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = await check_blob_store(shared.settings.model_copy(update={"s3_endpoint_url": gone}))
    assert down.status is Status.FAIL and "cannot be reached" in down.detail


async def test_an_outage_fails_uploads_fast_and_running_jobs_wait(
    shared: DrillStack, server: ServerApp, seaweed_server: EmbeddedS3, tmp_path: Path
) -> None:
    """Runs after the shared-nothing test, on its pools (pool B at least is up)."""
    lecture = lecture_wav(tmp_path / "lecture-44s.wav", repeat=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        api = Api(channel, token_for(f"s3-outage-{os.urandom(4).hex()}"))
        media = await api.upload(lecture)
        job = await api.create(media.name, skip_cache=True)
        await _until_chunks_run(api, job.name)
        seaweed_server.stop()
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await api.upload(lecture)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            details = error_details(caught.value)
            assert details["ErrorInfo"].reason == "BLOB_STORE_UNAVAILABLE", details  # type: ignore[attr-defined]
            assert "RetryInfo" in details, details
            await asyncio.sleep(3)  # stages that need the store wait meanwhile
        finally:
            seaweed_server.start()
        final = (await api.watch(job.name))[-1].job
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
        assert (await api.transcript(job.name)).segments
