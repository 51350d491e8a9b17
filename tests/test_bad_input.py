"""Bad input gets a clear status or a FAILED job with a reason; the worker lives on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import grpc
import pytest

from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api, error_details
from tests.support.crafted_media import ogg_claiming_duration
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import speech_samples, write_mp3, write_video


@pytest.mark.parametrize("name", ["", "jobs/", "jobs/not-a-uuid", "media/123", "jobs/../x"])
async def test_malformed_job_names(api: Api, name: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.get(name)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["BadRequest"].field_violations[0].field == "name"


async def test_unknown_job_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.get("jobs/5f0c4a9e-1d57-4b8e-9a61-1f4ac1b0a111")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(err.value)["ErrorInfo"].reason == "JOB_NOT_FOUND"


async def test_empty_upload(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(b"", "empty.mp3")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty" in err.value.details()


async def test_upload_without_header(api: Api) -> None:
    async def chunks_only():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(chunk=b"abc")

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UploadMedia(chunks_only(), metadata=api.metadata)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_upload_size_and_hash_are_verified(api: Api, settings: object) -> None:
    data = os.urandom(3000)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(data, size_bytes=4000)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["ErrorInfo"].reason == "SIZE_MISMATCH"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(data, sha256=hashlib.sha256(b"other").hexdigest())
    assert error_details(err.value)["ErrorInfo"].reason == "SHA256_MISMATCH"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.upload_bytes(data, size_bytes=10 * 1024**4)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Nothing half-written is left in the blob store.
    blobs = Path(settings.blob_dir)  # type: ignore[attr-defined]
    assert not [p for p in blobs.rglob("*.part")]


async def test_missing_media_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create("media/5f0c4a9e-1d57-4b8e-9a61-1f4ac1b0a111")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create("")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_invalid_options(api: Api) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    for options, field in (
        ({"language": "english!"}, "options.language"),
        ({"language": "fr"}, "options.language"),
        ({"model": "gigantic"}, "options.model"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.create(media.name, **options)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(err.value)["BadRequest"].field_violations[0].field == field


async def test_media_is_probed_before_work_is_queued(api: Api, tmp_path: Path) -> None:
    junk = await api.upload_bytes(os.urandom(200_000), "movie.mp4")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create(junk.name)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["ErrorInfo"].reason == "NOT_MEDIA"
    assert error_details(err.value)["BadRequest"].field_violations[0].field == "media"

    silent_video = await api.upload(write_video(tmp_path / "silent.mp4", 2.0, None))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create(silent_video.name)
    assert error_details(err.value)["ErrorInfo"].reason == "NO_AUDIO_STREAM"

    # Nothing was queued for either.
    listed = await api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=api.metadata)
    assert list(listed.jobs) == []


async def test_truncated_media_transcribes_what_is_there(api: Api) -> None:
    data = (MEDIA_DIR / "ocean.ogg").read_bytes()
    cut = await api.upload_bytes(data[: len(data) // 2], "cut.ogg")
    partial = await api.run(cut.name)
    assert partial.state == job_pb2.JOB_STATE_SUCCEEDED, partial.error
    assert "ocean" in (await api.transcript(partial.name)).text.lower()

    # ...and the worker is still serving.
    ok = await api.run(MEDIA_DIR / "ocean.ogg", skip_cache=True)
    assert ok.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_watch_positions(api: Api) -> None:
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.watch(job.name, after_seq=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.watch(job.name, after_seq=job.last_event_seq + 5)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    # Resuming mid-log replays exactly the rest.
    tail = [e.seq for e in await api.watch(job.name, after_seq=2) if e.seq]
    assert tail == list(range(3, job.last_event_seq + 1))


async def test_a_file_claiming_ten_hours_is_measured_not_believed(api: Api) -> None:
    # 22 kB cannot hold ten hours of audio: the claim is ignored (the length is
    # unknown until decoded), the job runs, and the decoded length is what counts.
    claims = ogg_claiming_duration((MEDIA_DIR / "ocean.ogg").read_bytes(), 10 * 3600)
    media = await api.upload_bytes(claims, "ten-hours.ogg")
    job = await api.run(media.name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    assert 0 < job.media_duration.ToTimedelta().total_seconds() < 60


async def test_truncated_mp3(api: Api, tmp_path: Path) -> None:
    mp3 = write_mp3(tmp_path / "volcano.mp3", speech_samples(MEDIA_DIR / "volcano.ogg"))
    data = mp3.read_bytes()
    cut = await api.upload_bytes(data[: int(len(data) * 0.6)], "cut.mp3")
    job = await api.run(cut.name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    text = (await api.transcript(job.name)).text.lower()
    assert "molten" in text and "sky" not in text
