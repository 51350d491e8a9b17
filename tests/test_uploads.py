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


async def _append(
    api: Api, header: job_service_pb2.UploadHeader, data: bytes, offset: int, end: int
) -> job_service_pb2.AppendUploadResponse:
    """One AppendUpload part: bytes [offset, end) of `data`."""
    part = job_service_pb2.UploadHeader()
    part.CopyFrom(header)
    part.offset_bytes = offset
    return await api.jobs.AppendUpload(
        job_service_pb2.AppendUploadRequest(header=part, data=data[offset:end]),
        metadata=api.metadata,
        timeout=30,
    )


async def test_append_upload_parts_mixed_with_a_stream(api: Api, other_api: Api) -> None:
    data = LECTURE.read_bytes()
    third = len(data) // 3
    header = job_service_pb2.UploadHeader(
        filename="lecture.ogg",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=str(uuid.uuid4()),
    )
    # Parts are joined by their upload id: none, none.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _append(api, job_service_pb2.UploadHeader(filename="x", size_bytes=1), data, 0, 1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.upload_id" in err.value.details()
    # A part is at most max_chunk_bytes (1 MiB).
    big = bytes(1024 * 1024 + 1)
    too_big = job_service_pb2.UploadHeader(
        filename="big.bin",
        size_bytes=len(big),
        sha256=hashlib.sha256(big).hexdigest(),
        upload_id=str(uuid.uuid4()),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _append(api, too_big, big, 0, len(big))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["BadRequest"].field_violations[0].field == "data"  # type: ignore[attr-defined]

    first = await _append(api, header, data, 0, third)
    assert first.stored_bytes == third and not first.HasField("media")
    # The same part again (a retry after a lost reply) is refused with where to go on:
    # the stored offset is in the ErrorInfo, for clients that do not parse messages.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _append(api, header, data, 0, third)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_details(err.value)["ErrorInfo"]
    assert info.reason == "UPLOAD_OFFSET_MISMATCH"  # type: ignore[attr-defined]
    assert info.metadata["stored_bytes"] == str(third)  # type: ignore[attr-defined]
    # Another user's part cannot join this upload.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _append(other_api, header, data, third, 2 * third)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(err.value)["ErrorInfo"].metadata["stored_bytes"] == "0"  # type: ignore[attr-defined]
    assert (await _status(api, header.upload_id)).stored_bytes == third

    # A stream goes on from the parts, stopping short; a part goes on from the stream.
    resumed = job_service_pb2.UploadHeader()
    resumed.CopyFrom(header)
    resumed.offset_bytes = third

    async def middle():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=resumed)
        for i in range(third, 2 * third, CHUNK):
            yield job_service_pb2.UploadMediaRequest(chunk=data[i : min(i + CHUNK, 2 * third)])

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UploadMedia(middle(), metadata=api.metadata, timeout=30)
    assert error_details(err.value)["ErrorInfo"].reason == "SIZE_MISMATCH"  # type: ignore[attr-defined]
    assert (await _status(api, header.upload_id)).stored_bytes == 2 * third
    last = await _append(api, header, data, 2 * third, len(data))
    assert last.stored_bytes == len(data)
    assert last.media.size_bytes == len(data) and last.media.sha256 == header.sha256
    # Asking again returns the same media, from any offset.
    again = await _append(api, header, data, 0, 0)
    assert again.media.name == last.media.name
    assert (await _status(api, header.upload_id)).media.name == last.media.name


async def test_append_upload_checks_the_sha256_of_the_whole_file(api: Api) -> None:
    data = b"abc" * 1000
    header = job_service_pb2.UploadHeader(
        filename="a.bin",
        size_bytes=len(data),
        sha256=hashlib.sha256(b"other").hexdigest(),
        upload_id=str(uuid.uuid4()),
    )
    assert (await _append(api, header, data, 0, 1000)).stored_bytes == 1000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _append(api, header, data, 1000, len(data))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["ErrorInfo"].reason == "SHA256_MISMATCH"  # type: ignore[attr-defined]
    # Nothing wrong is kept: the upload starts again from 0.
    assert (await _status(api, header.upload_id)).stored_bytes == 0


async def _read_media(api: Api, name: str, offset: int = 0) -> tuple[bytes, int, list[int]]:
    """The bytes ReadMedia streams from `offset`, the size it reports and each piece's offset."""
    data, size, offsets = b"", -1, []
    request = job_service_pb2.ReadMediaRequest(name=name, offset_bytes=offset)
    async for piece in api.jobs.ReadMedia(request, metadata=api.metadata, timeout=30):
        offsets.append(piece.offset_bytes)
        data += piece.data
        size = piece.size_bytes
    return data, size, offsets


async def test_read_media_streams_the_owners_file_back_from_any_offset(
    api: Api, other_api: Api
) -> None:
    # More than two pieces' worth; the file's kind does not matter to ReadMedia.
    content = bytes(range(256)) * 5000
    media = await api.upload_bytes(content, "file.bin")
    data, size, offsets = await _read_media(api, media.name)
    assert data == content and size == len(content)
    # Bounded pieces, each where the previous one ended.
    assert len(offsets) >= 2 and offsets[0] == 0 and offsets == sorted(set(offsets))
    middle = len(content) // 3
    assert (await _read_media(api, media.name, middle))[0] == content[middle:]
    # From the very end: one empty piece that says where the file ends.
    assert await _read_media(api, media.name, len(content)) == (b"", len(content), [len(content)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _read_media(api, media.name, len(content) + 1)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    # Another user cannot tell it exists; once deleted it is gone for the owner too.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _read_media(other_api, media.name)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await api.jobs.DeleteMedia(
        job_service_pb2.DeleteMediaRequest(name=media.name), metadata=api.metadata, timeout=30
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _read_media(api, media.name)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err.value)["ErrorInfo"].reason == "MEDIA_NOT_FOUND"  # type: ignore[attr-defined]
