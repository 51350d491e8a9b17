"""Bearer tokens and tenancy."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest

from reelscribe.v1 import job_service_pb2, transcript_service_pb2
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
from tests.support.tokens import JWT_SECRET


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
