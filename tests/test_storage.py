"""Storage has a bound: uploads carry a SHA-256, a per-plan stored-bytes quota
(media plus uploads in progress, reserved atomically), and DeleteMedia."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from reelscribe import blobs
from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2, transcript_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.media import LECTURE
from tests.support.tokens import token_for
from tests.support.uploads import abandon_upload

LIMIT = 1000


async def _usage(api: Api) -> job_service_pb2.GetUsageResponse:
    return await api.jobs.GetUsage(
        job_service_pb2.GetUsageRequest(), metadata=api.metadata, timeout=30
    )


async def _delete_media(api: Api, name: str) -> None:
    await api.jobs.DeleteMedia(
        job_service_pb2.DeleteMediaRequest(name=name), metadata=api.metadata, timeout=30
    )


async def _refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


class LimitedStack:
    """A server with a small storage limit, and a way to call it as any user."""

    def __init__(self, app: ServerApp, channel: grpc.aio.Channel) -> None:
        self.app = app
        self.channel = channel

    def api(self, user: str, plan: str = "free") -> Api:
        return Api(self.channel, token_for(user, plan=plan))


@pytest.fixture
async def limited(
    extra_server: Callable[..., Awaitable[ServerApp]],
) -> AsyncIterator[LimitedStack]:
    app = await extra_server(free_max_stored_bytes=LIMIT)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield LimitedStack(app, channel)


async def test_an_upload_without_sha256_is_refused(api: Api) -> None:
    err = await _refused(api.upload_bytes(b"x" * 100, sha256=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in error_details(err)["BadRequest"].field_violations]  # type: ignore[attr-defined]
    assert fields == ["header.sha256"]
    # A wrong one is still caught when the last byte arrives.
    err = await _refused(api.upload_bytes(b"x" * 100, sha256=hashlib.sha256(b"y").hexdigest()))
    assert error_details(err)["ErrorInfo"].reason == "SHA256_MISMATCH"  # type: ignore[attr-defined]


async def test_storage_quota_counts_media_and_uploads_in_progress(
    limited: LimitedStack, user: str
) -> None:
    api = limited.api(user)
    usage = await _usage(api)
    assert (usage.stored_bytes, usage.max_stored_bytes) == (0, LIMIT)

    first = await api.upload_bytes(b"a" * 600)
    assert (await _usage(api)).stored_bytes == 600

    err = await _refused(api.upload_bytes(b"b" * 500))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error_details(err)
    assert details["ErrorInfo"].reason == "STORAGE_QUOTA_EXCEEDED"  # type: ignore[attr-defined]
    violation = details["QuotaFailure"].violations[0]  # type: ignore[attr-defined]
    assert violation.subject == f"user:{user}" and str(LIMIT) in violation.description
    assert (await _usage(api)).stored_bytes == 600  # the refused upload reserved nothing

    # An upload in progress holds its declared size from the start.
    await abandon_upload(api, b"c" * 400, 100, str(uuid.uuid4()))
    assert (await _usage(api)).stored_bytes == 1000
    err = await _refused(api.upload_bytes(b"d"))
    assert error_details(err)["ErrorInfo"].reason == "STORAGE_QUOTA_EXCEEDED"  # type: ignore[attr-defined]
    # A part of an AppendUpload reserves the same way (the same upload core).
    part = job_service_pb2.AppendUploadRequest(
        header=job_service_pb2.UploadHeader(
            filename="d.bin",
            size_bytes=1,
            sha256=hashlib.sha256(b"d").hexdigest(),
            upload_id=str(uuid.uuid4()),
        ),
        data=b"d",
    )
    err = await _refused(api.jobs.AppendUpload(part, metadata=api.metadata, timeout=30))
    assert error_details(err)["ErrorInfo"].reason == "STORAGE_QUOTA_EXCEEDED"  # type: ignore[attr-defined]

    # Deleting media frees its bytes.
    await _delete_media(api, first.name)
    assert (await _usage(api)).stored_bytes == 400
    await api.upload_bytes(b"e" * 600)
    assert (await _usage(api)).stored_bytes == 1000

    # Premium users (and admins) are not limited.
    premium = limited.api(user + "-premium", plan="premium")
    await premium.upload_bytes(b"f" * (3 * LIMIT))
    usage = await _usage(premium)
    assert (usage.stored_bytes, usage.max_stored_bytes) == (3 * LIMIT, 0)


async def test_concurrent_uploads_cannot_overshoot_the_quota(
    limited: LimitedStack, user: str
) -> None:
    api = limited.api(user)
    results = await asyncio.gather(
        *(api.upload_bytes(bytes([n]) * 300) for n in range(8)), return_exceptions=True
    )
    done = [r for r in results if isinstance(r, job_pb2.Media)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(done) == 3 and len(refused) == 5, results
    assert {error_details(e)["ErrorInfo"].reason for e in refused} == {"STORAGE_QUOTA_EXCEEDED"}  # type: ignore[attr-defined]
    assert (await _usage(api)).stored_bytes == 900


async def test_delete_media(
    api: Api,
    other_api: Api,
    user: str,
    settings: Settings,
    extra_server: Callable[..., Awaitable[ServerApp]],
    idle_queue: str,
) -> None:
    media = await api.upload(LECTURE)
    blob = settings.blob_dir / blobs.owner_prefix(user) / "media" / media.name.split("/")[1]
    assert blob.exists()

    # Not while a queued job uses it (a server whose queue no worker consumes).
    idle = await extra_server(queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{idle.port}") as channel:
        queued = await Api(channel, token_for(user)).create(media.name)
        err = await _refused(_delete_media(api, media.name))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(err)["ErrorInfo"].reason == "MEDIA_IN_USE"  # type: ignore[attr-defined]
        await api.cancel(queued.name)

    job = await api.run(media.name, skip_cache=True)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED

    # Another user's media does not exist for them; malformed names are invalid.
    err = await _refused(_delete_media(other_api, media.name))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _refused(_delete_media(api, "jobs/" + media.name.split("/")[1]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert blob.exists()

    await _delete_media(api, media.name)
    assert not blob.exists()
    err = await _refused(_delete_media(api, media.name))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _refused(api.create(media.name))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    # The job keeps its name for the media and its transcript.
    assert (await api.get(job.name)).media == media.name
    assert "photosynthesis" in (await api.transcript(job.name)).text.lower()

    # Rendering clips needs the file: the job fails with a clear reason.
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()),
        parent=job.name,
        options=job_pb2.JobOptions(extra_stages=[job_pb2.STAGE_RENDER_CLIPS], highlight_count=1),
    )
    child = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    final = (await api.watch(child.name))[-1].job
    assert final.state == job_pb2.JOB_STATE_FAILED
    assert final.error.reason == "MEDIA_MISSING", final.error
    assert final.error.stage == job_pb2.STAGE_RENDER_CLIPS
    # Highlights chosen before the clips stay readable.
    highlights = await api.transcripts.ListHighlights(
        transcript_service_pb2.ListHighlightsRequest(name=child.name),
        metadata=api.metadata,
        timeout=30,
    )
    assert len(highlights.highlights) == 1
