"""Resumable uploads: interrupt, ask where to resume, finish, exactly one media."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import grpc
import pytest

from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.media import LECTURE

CHUNK = 16 * 1024


async def _status(api: Api, upload_id: str) -> job_service_pb2.GetUploadResponse:
    return await api.jobs.GetUpload(
        job_service_pb2.GetUploadRequest(upload_id=upload_id), metadata=api.metadata
    )


async def test_interrupted_upload_resumes_from_the_stored_offset(
    api: Api, other_api: Api, server: ServerApp
) -> None:
    data = (LECTURE).read_bytes()
    upload_id = str(uuid.uuid4())
    header = job_service_pb2.UploadHeader(
        filename="lecture.ogg",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
    )
    sent = asyncio.Event()

    async def first_part():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=header)
        for i in range(0, 3 * CHUNK, CHUNK):
            yield job_service_pb2.UploadMediaRequest(chunk=data[i : i + CHUNK])
        sent.set()
        await asyncio.Event().wait()  # the connection "drops" here

    call = api.jobs.UploadMedia(first_part(), metadata=api.metadata)
    await sent.wait()
    stored = 0
    for _ in range(100):
        try:
            stored = (await _status(api, upload_id)).stored_bytes
        except grpc.aio.AioRpcError as exc:  # the server may not have read the header yet
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        if stored == 3 * CHUNK:
            break
        await asyncio.sleep(0.05)
    assert stored == 3 * CHUNK
    call.cancel()
    await asyncio.sleep(0.2)

    # Resuming from the wrong place is refused with the right offset in the message.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _resume(api, header, data, offset=0)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"offset_bytes={stored}" in err.value.details()

    status = await _status(api, upload_id)
    assert status.stored_bytes == stored and status.size_bytes == len(data)
    media = await _resume(api, header, data, offset=status.stored_bytes)
    assert media.size_bytes == len(data) and media.sha256 == header.sha256

    # Asking again is idempotent: the same, single media object.
    again = await _resume(api, header, data, offset=0)
    assert again.name == media.name
    assert (await _status(api, upload_id)).media.name == media.name
    async with server.deps.pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM media WHERE owner = $1",
            media_owner := (await api.create(media.name)).owner,
        )
    assert count == 1, media_owner

    # Another user cannot see the upload.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _status(other_api, upload_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def _resume(
    api: Api, header: job_service_pb2.UploadHeader, data: bytes, offset: int
) -> job_pb2.Media:
    resumed = job_service_pb2.UploadHeader()
    resumed.CopyFrom(header)
    resumed.offset_bytes = offset

    async def rest():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=resumed)
        for i in range(offset, len(data), CHUNK):
            yield job_service_pb2.UploadMediaRequest(chunk=data[i : i + CHUNK])

    return (await api.jobs.UploadMedia(rest(), metadata=api.metadata, timeout=30)).media


async def test_upload_id_for_a_different_file_is_refused(api: Api) -> None:
    upload_id = str(uuid.uuid4())
    await api.upload_bytes(b"a" * 100, "a.bin", upload_id=upload_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(b"b" * 200, "b.bin", upload_id=upload_id)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(err.value)["ErrorInfo"].reason == "UPLOAD_ID_REUSED"
