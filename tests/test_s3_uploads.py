"""Uploads kept in S3 resume on any server.

Two servers, each with a data directory of its own, share Postgres, Valkey and
one SeaweedFS started for this module: an upload begun on server A (a stream,
then an `AppendUpload` part) is continued on server B after A has stopped, and
its media runs through a job on a worker that shares nothing else either. An
upload with the wrong SHA-256 and an abandoned one leave nothing in the bucket.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from reelscribe import db, redis_client
from reelscribe import uploads as upload_store
from reelscribe.blobs import owner_prefix
from reelscribe.db import uploads as uploads_db
from reelscribe.embedded_s3 import EmbeddedS3, S3Endpoint
from reelscribe.partials import open_partials
from reelscribe.s3partials import MIN_PART_BYTES, S3Partials, staged_prefix
from reelscribe.s3store import S3BlobStore
from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api, error_details
from tests.support.drills_stack import DrillStack, s3_drill_stack
from tests.support.media import LECTURE
from tests.support.mediagen import speech_samples, write_wav
from tests.support.processes import WorkerProcess
from tests.support.tokens import token_for

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    server = EmbeddedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server.endpoint
    server.stop()


@pytest.fixture(scope="module")
def stack(seaweed: S3Endpoint) -> Iterator[DrillStack]:
    with s3_drill_stack("s3up", seaweed) as stack:
        yield stack


@pytest.fixture(scope="module")
def bucket(stack: DrillStack) -> S3BlobStore:
    s = stack.settings
    return S3BlobStore(
        bucket=s.s3_bucket,
        endpoint_url=s.s3_endpoint_url,
        access_key_id=s.s3_access_key_id,
        secret_access_key=s.s3_secret_access_key.get_secret_value(),
    )


def _header(
    data: bytes, upload_id: str, offset: int = 0, sha256: str = ""
) -> job_service_pb2.UploadHeader:
    return job_service_pb2.UploadHeader(
        filename="lecture.wav",
        size_bytes=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
        offset_bytes=offset,
    )


async def _stream(
    api: Api, header: job_service_pb2.UploadHeader, data: bytes, end: int
) -> grpc.aio.AioRpcError | job_pb2.Media:
    """UploadMedia of bytes [header.offset_bytes, end); the media, or the error it ended with."""

    async def messages():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=header)
        for i in range(header.offset_bytes, end, MiB):
            yield job_service_pb2.UploadMediaRequest(chunk=data[i : min(i + MiB, end)])

    try:
        return (await api.jobs.UploadMedia(messages(), metadata=api.metadata, timeout=60)).media
    except grpc.aio.AioRpcError as exc:
        return exc


async def _append(
    api: Api, data: bytes, upload_id: str, start: int, end: int, **kw: str
) -> job_service_pb2.AppendUploadResponse:
    return await api.jobs.AppendUpload(
        job_service_pb2.AppendUploadRequest(
            header=_header(data, upload_id, start, **kw), data=data[start:end]
        ),
        metadata=api.metadata,
        timeout=30,
    )


async def _stored(api: Api, upload_id: str) -> int:
    reply = await api.jobs.GetUpload(
        job_service_pb2.GetUploadRequest(upload_id=upload_id), metadata=api.metadata, timeout=30
    )
    return reply.stored_bytes


def _keys(bucket: S3BlobStore, prefix: str) -> list[str]:
    listed = bucket._client.list_objects_v2(Bucket=bucket.bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def _multiparts(bucket: S3BlobStore, user: str) -> list[str]:
    """Keys of the unfinished multipart uploads under the user's media."""
    listed = bucket._client.list_multipart_uploads(
        Bucket=bucket.bucket, Prefix=f"{owner_prefix(user)}/media/"
    )
    return [u["Key"] for u in listed.get("Uploads", [])]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_an_upload_begun_on_one_server_is_finished_on_another(
    stack: DrillStack, bucket: S3BlobStore, tmp_path: Path
) -> None:
    # 22 s of speech at 192 kHz: 8.4 MB, more than one 5 MiB part, a short job.
    rate = 192_000
    data = write_wav(tmp_path / "lecture.wav", speech_samples(LECTURE, 1, rate), rate).read_bytes()
    assert MIN_PART_BYTES < len(data) < 2 * MIN_PART_BYTES
    user, upload_id = f"s3up-{os.urandom(4).hex()}", str(uuid.uuid4())
    dirs = {name: stack.data_dir / name for name in ("server-a", "server-b", "worker")}
    for path in dirs.values():
        path.mkdir()
    worker = WorkerProcess(
        stack.settings.model_copy(update={"data_dir": dirs["worker"]}),
        stack.data_dir / "worker.log",
        extra_env=stack.worker_env,
        threads=1,
    )
    stack.workers.append(worker)
    worker.start()

    server_a = await stack.start_server(data_dir=dirs["server-a"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server_a.port}") as channel:
        api = Api(channel, token_for(user))
        # A stream that ends after 2 MiB, then a 1 MiB part: both staged in the bucket.
        short = await _stream(api, _header(data, upload_id), data, 2 * MiB)
        assert isinstance(short, grpc.aio.AioRpcError)
        assert error_details(short)["ErrorInfo"].reason == "SIZE_MISMATCH"  # type: ignore[attr-defined]
        assert (await _append(api, data, upload_id, 2 * MiB, 3 * MiB)).stored_bytes == 3 * MiB
    await server_a.stop(grace_s=0.5)
    assert len(_keys(bucket, staged_prefix(user, upload_id))) == 2
    assert not _files(dirs["server-a"]), "server A kept upload bytes on its disk"

    server_b = await stack.start_server(data_dir=dirs["server-b"])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server_b.port}") as channel:
            api = Api(channel, token_for(user))
            assert await _stored(api, upload_id) == 3 * MiB
            # Resuming from the wrong place is refused with the right offset.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _append(api, data, upload_id, 0, MiB)
            assert error_details(err.value)["ErrorInfo"].metadata["stored_bytes"] == str(3 * MiB)  # type: ignore[attr-defined]
            await _append(api, data, upload_id, 3 * MiB, 4 * MiB)
            # 5 MiB staged: folded into the first multipart part (A's and B's bytes).
            assert (await _append(api, data, upload_id, 4 * MiB, 5 * MiB)).stored_bytes == 5 * MiB
            assert not _keys(bucket, staged_prefix(user, upload_id))
            assert len(_multiparts(bucket, user)) == 1
            # The rest as a stream: the last part, then the object, checked against the SHA-256.
            media = await _stream(api, _header(data, upload_id, 5 * MiB), data, len(data))
            assert isinstance(media, job_pb2.Media), media
            assert media.size_bytes == len(data)
            assert media.sha256 == hashlib.sha256(data).hexdigest()
            assert not _multiparts(bucket, user)
            assert _keys(bucket, f"{owner_prefix(user)}/uploads/") == []
            key = f"{owner_prefix(user)}/media/{media.name.split('/')[1]}"
            assert b"".join(bucket.stream(key)) == data
            assert not _files(dirs["server-b"]), "server B kept upload bytes on its disk"

            job = await api.run(media.name, skip_cache=True)
            assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
            text = " ".join(s.text for s in (await api.transcript(job.name)).segments)
            assert len(text.split()) > 20, text  # 22 s of speech
    finally:
        await server_b.stop(grace_s=0.5)
        worker.stop()


async def test_wrong_and_abandoned_uploads_leave_nothing_in_the_bucket(
    stack: DrillStack, bucket: S3BlobStore
) -> None:
    user = f"s3up-{os.urandom(4).hex()}"
    data = os.urandom(6 * MiB + 1000)
    (stack.data_dir / "server-c").mkdir()
    server = await stack.start_server(data_dir=stack.data_dir / "server-c")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            api = Api(channel, token_for(user))
            # The wrong SHA-256: refused when the last byte arrives, nothing kept.
            wrong, bad_sha = str(uuid.uuid4()), hashlib.sha256(b"other").hexdigest()
            short = await _stream(api, _header(data, wrong, sha256=bad_sha), data, 6 * MiB)
            assert isinstance(short, grpc.aio.AioRpcError)  # 6 MiB: one part
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _append(api, data, wrong, 6 * MiB, len(data), sha256=bad_sha)
            assert error_details(err.value)["ErrorInfo"].reason == "SHA256_MISMATCH"  # type: ignore[attr-defined]
            assert await _stored(api, wrong) == 0
            assert not _multiparts(bucket, user)
            assert not _keys(bucket, f"{owner_prefix(user)}/")

            # Abandoned with a multipart part and a staged object: the sweep removes both.
            abandoned = str(uuid.uuid4())
            await _stream(api, _header(data, abandoned), data, 6 * MiB)
            await _append(api, data, abandoned, 6 * MiB, len(data) - 1)
            assert len(_multiparts(bucket, user)) == 1
            assert len(_keys(bucket, staged_prefix(user, abandoned))) == 1
            settings = stack.settings
            pool = await db.create_pool(settings.database_url, max_size=2)
            redis = redis_client.connect(settings.redis_url)
            try:
                async with pool.acquire() as conn:
                    # The SHA-256 so far travels with the upload (no read-back at the end).
                    assert await conn.fetchval(
                        "SELECT hash_state IS NOT NULL FROM uploads WHERE upload_id = $1",
                        abandoned,
                    )
                    await conn.execute(
                        "UPDATE uploads SET update_time = now() - interval '2 days'"
                        " WHERE upload_id = $1",
                        abandoned,
                    )
                partials = open_partials(pool, bucket, settings.blob_dir)
                swept = await upload_store.sweep(
                    pool, redis, partials, idle_s=settings.upload_expiry_s
                )
            finally:
                await redis.aclose()
                await pool.close()
            assert swept == 1
            assert not _multiparts(bucket, user)
            assert not _keys(bucket, f"{owner_prefix(user)}/")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _stored(api, abandoned)
            assert error_details(err.value)["ErrorInfo"].reason == "UPLOAD_EXPIRED"  # type: ignore[attr-defined]
    finally:
        await server.stop(grace_s=0.5)


async def test_a_stream_goes_up_in_parts_while_it_arrives(
    stack: DrillStack, bucket: S3BlobStore
) -> None:
    """The keeper on its own (5 MiB buffers here, 16 MiB in servers): a full
    buffer is stored while the next fills, and when the stream breaks, the part
    in flight and the bytes after it are both kept."""
    user, upload_id = f"s3up-{os.urandom(4).hex()}", str(uuid.uuid4())
    data = os.urandom(12 * MiB + 123)
    pool = await db.create_pool(stack.settings.database_url, max_size=4)
    try:
        async with pool.acquire() as conn:
            row = await uploads_db.open_upload(
                conn,
                owner=user,
                upload_id=upload_id,
                filename="a.bin",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        partials = S3Partials(pool, bucket, buffer_bytes=MIN_PART_BYTES)

        async def dropped() -> AsyncIterator[bytes]:
            for i in range(0, 7 * MiB, MiB):
                yield data[i : i + MiB]
            raise ConnectionResetError("the client went away")

        with pytest.raises(ConnectionResetError):
            await partials.write(row, 0, dropped())
        async with pool.acquire() as conn:
            row = await uploads_db.get_upload(conn, user, upload_id)
            assert row is not None
            pieces = await uploads_db.pieces(conn, user, upload_id)
        assert await partials.stored(row) == 7 * MiB
        assert [(p["part_number"], p["size_bytes"]) for p in pieces] == [
            (1, 5 * MiB),  # the part in flight when the stream broke
            (None, 2 * MiB),  # the rest, staged
        ]

        async def rest() -> AsyncIterator[bytes]:
            for i in range(7 * MiB, len(data), MiB):
                yield data[i : i + MiB]

        assert await partials.write(row, 7 * MiB, rest()) == len(data)
        async with pool.acquire() as conn:
            pieces = await uploads_db.pieces(conn, user, upload_id)
        assert [(p["part_number"], p["size_bytes"]) for p in pieces] == [
            (1, 5 * MiB),
            (2, 7 * MiB),  # the staged 2 MiB folded into the next part
            (3, 123),
        ]
        media_id, key = await partials.complete(row)
        assert key == f"{owner_prefix(user)}/media/{media_id}"
        assert b"".join(bucket.stream(key)) == data
        assert not _keys(bucket, staged_prefix(user, upload_id))
        bucket.delete(key)
    finally:
        await pool.close()
