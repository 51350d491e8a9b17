"""Numbers, times and text a client sends that the server cannot store or compare:
INVALID_ARGUMENT naming the field, never INTERNAL (against the running server)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2

from reelscribe.v1 import job_service_pb2, search_service_pb2
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR

#: Not cursors: digits of other scripts (`str.isdigit` takes them) and numbers
#: beyond a bigint (signs, spaces and the like: tests/test_input_parsing.py).
BAD_NUMBERS = ["²", "٣", "1²", "9" * 20, "9" * 5000]


def _field(err: grpc.aio.AioRpcError) -> str:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    return str(error_details(err)["BadRequest"].field_violations[0].field)


@pytest.mark.parametrize("cursor", BAD_NUMBERS)
async def test_watch_cursors_are_ascii_numbers_within_int64(api: Api, cursor: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in api.jobs.WatchJobs(
            job_service_pb2.WatchJobsRequest(after_cursor=cursor), metadata=api.metadata, timeout=10
        ):
            pass
    assert _field(err.value) == "after_cursor"


async def test_webhook_page_tokens_fit_their_columns(api: Api) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.create(media.name)
    tokens = [
        "1:99999999999",  # the attempt is an integer column
        "99999999999999999999:1",  # the event a bigint
        "²:1",
        "1:٣",
        "-1:0",
        "1",
        "1:2:3",
    ]
    for token in tokens:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.ListWebhookDeliveries(
                job_service_pb2.ListWebhookDeliveriesRequest(name=job.name, page_token=token),
                metadata=api.metadata,
                timeout=10,
            )
        assert _field(err.value) == "page_token", token
    # The largest positions there are still parse (and find nothing after them).
    reply = await api.jobs.ListWebhookDeliveries(
        job_service_pb2.ListWebhookDeliveriesRequest(
            name=job.name, page_token=f"{2**63 - 1}:{2**31 - 1}"
        ),
        metadata=api.metadata,
        timeout=10,
    )
    assert list(reply.deliveries) == []


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (253_402_300_800, 0),  # year 10000
        (-62_135_596_801, 0),  # before year 1
        (2**62, 0),
        (-(2**62), 0),
        (0, -1),
        (0, 1_000_000_000),
    ],
)
@pytest.mark.parametrize("field", ["create_time_min", "create_time_max"])
async def test_search_times_are_valid_timestamps(
    api: Api, field: str, seconds: int, nanos: int
) -> None:
    request = search_service_pb2.SearchRequest(query="ocean")
    getattr(request, field).CopyFrom(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.search.Search(request, metadata=api.metadata, timeout=30)
    assert _field(err.value) == field


@pytest.mark.parametrize(
    "labels",
    [{"team\x00": "a"}, {"team": "a\x00b"}, {"\x00": "\x00"}],
)
async def test_labels_with_nul_are_invalid_arguments(api: Api, labels: dict[str, str]) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()), media=media.name, labels=labels
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)
    assert _field(err.value).startswith("labels[")
    assert "NUL" in err.value.details()
    # Nothing was created.
    listed = await api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=api.metadata)
    assert list(listed.jobs) == []
