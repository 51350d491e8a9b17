"""Bearer tokens and tenancy."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import jwt
import pytest

from reelscribe.v1 import job_service_pb2, transcript_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
from tests.support.tokens import JWT_SECRET, token_for

StartServer = Callable[..., Awaitable[ServerApp]]


def _token(**overrides: object) -> str:
    claims: dict[str, object] = {
        "sub": "mallory",
        "exp": int(time.time()) + 600,
        "iss": "reelscribe",
        "aud": "reelscribe",
    }
    claims.update(overrides)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, JWT_SECRET, algorithm="HS256"
    )


BAD_TOKENS = {
    "none": None,
    "expired": _token(exp=int(time.time()) - 3600),
    "bad-signature": jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 600},
        "some-other-secret-" + "y" * 30,
        algorithm="HS256",
    ),
    "missing-exp": _token(exp=None),
    "garbage": "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated(channel: grpc.aio.Channel, case: str) -> None:
    api = Api(channel, BAD_TOKENS[case])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=api.metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_details(err.value)["ErrorInfo"]
    assert info.domain == "reelscribe.v1" and info.reason
    assert "Traceback" not in (err.value.details() or "")


async def test_streaming_rpcs_need_a_token_too(channel: grpc.aio.Channel) -> None:
    api = Api(channel, None)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.watch("jobs/00000000-0000-0000-0000-000000000000")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(b"abc")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_other_users_job_is_not_found(api: Api, other_api: Api) -> None:
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    media_name = job.media

    calls = {
        "GetJob": other_api.get(job.name),
        "CancelJob": other_api.cancel(job.name),
        "WatchJob": other_api.watch(job.name),
        "GetTranscript": other_api.transcript(job.name),
        "DeleteJob": other_api.jobs.DeleteJob(
            job_service_pb2.DeleteJobRequest(name=job.name), metadata=other_api.metadata
        ),
        "ExportTranscript": other_api.transcripts.ExportTranscript(
            transcript_service_pb2.ExportTranscriptRequest(
                name=job.name, format=transcript_service_pb2.EXPORT_FORMAT_TXT
            ),
            metadata=other_api.metadata,
        ),
        "CreateJob(other's media)": other_api.create(media_name),
    }
    for label, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, label

    listed = await other_api.jobs.ListJobs(
        job_service_pb2.ListJobsRequest(), metadata=other_api.metadata
    )
    assert job.name not in {j.name for j in listed.jobs}
    # The owner still sees everything.
    assert (await api.get(job.name)).name == job.name


async def test_listing_all_users_needs_admin(api: Api, channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.ListJobs(
            job_service_pb2.ListJobsRequest(all_users=True), metadata=api.metadata
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.create(media.name)
    admin = Api(channel, _token(sub="root", role="admin"))
    listed = await admin.jobs.ListJobs(
        job_service_pb2.ListJobsRequest(all_users=True, page_size=1000), metadata=admin.metadata
    )
    assert job.name in {j.name for j in listed.jobs}
    await api.watch(job.name)


def _expired_upload(err: grpc.aio.AioRpcError) -> None:
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (err.code(), err.details())
    assert error_details(err)["ErrorInfo"].reason == "TOKEN_EXPIRED"
    assert "offset_bytes=stored_bytes" in (err.details() or "")  # how to resume


async def test_an_upload_does_not_outlive_its_token(extra_server: StartServer, user: str) -> None:
    app = await extra_server(jwt_leeway_s=0.5)
    data = os.urandom(64 * 1024)
    header = job_service_pb2.UploadHeader(
        filename="slow.bin",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=str(uuid.uuid4()),
    )

    async def slowly() -> AsyncIterator[job_service_pb2.UploadMediaRequest]:
        yield job_service_pb2.UploadMediaRequest(header=header)
        for i in range(0, len(data), 4096):  # 16 chunks, 0.5 s apart: 8 s in all
            yield job_service_pb2.UploadMediaRequest(chunk=data[i : i + 4096])
            await asyncio.sleep(0.5)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        short = Api(channel, token_for(user, ttl_s=2))
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await short.jobs.UploadMedia(slowly(), metadata=short.metadata, timeout=30)
        _expired_upload(err.value)
        assert time.monotonic() - started < 6
        # With a fresh token the upload resumes where the expired one stopped.
        fresh = Api(channel, token_for(user))
        status = await fresh.jobs.GetUpload(
            job_service_pb2.GetUploadRequest(upload_id=header.upload_id), metadata=fresh.metadata
        )
        stored = status.stored_bytes
        assert 0 < stored < len(data)
        header.offset_bytes = stored

        async def rest() -> AsyncIterator[job_service_pb2.UploadMediaRequest]:
            yield job_service_pb2.UploadMediaRequest(header=header)
            yield job_service_pb2.UploadMediaRequest(chunk=data[stored:])

        reply = await fresh.jobs.UploadMedia(rest(), metadata=fresh.metadata, timeout=30)
        assert reply.media.size_bytes == len(data)


async def test_an_idle_upload_ends_when_its_token_expires(
    extra_server: StartServer, user: str
) -> None:
    app = await extra_server(jwt_leeway_s=0.5)
    # Not resumable (no upload_id): what it stored is removed when it ends.
    header = job_service_pb2.UploadHeader(
        filename="idle.bin", size_bytes=10, sha256=hashlib.sha256(b"1234567890").hexdigest()
    )
    stop = asyncio.Event()

    async def then_nothing() -> AsyncIterator[job_service_pb2.UploadMediaRequest]:
        yield job_service_pb2.UploadMediaRequest(header=header)
        yield job_service_pb2.UploadMediaRequest(chunk=b"12345")
        await stop.wait()  # the client neither sends nor closes

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user, ttl_s=2))
        started = time.monotonic()
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.jobs.UploadMedia(then_nothing(), metadata=api.metadata, timeout=15)
        finally:
            stop.set()
        _expired_upload(err.value)
        assert time.monotonic() - started < 6
        assert app.interceptor.open_streams == 0
