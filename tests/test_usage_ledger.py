"""Audio minutes that cannot be lied about, raced or refunded.

Lengths are measured by decoding (with a hard ceiling), never taken from a
header; minutes are reserved atomically at creation and at decode, settled to
what was transcribed, and kept in a ledger that deleting jobs does not change.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest

from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.crafted_media import lying_ogg, ogg_claiming_duration, opus_ogg
from tests.support.media import LECTURE, MEDIA_DIR
from tests.support.mediagen import lecture_wav, speech_samples, write_wav
from tests.support.processes import WorkerProcess
from tests.support.tokens import token_for

StartServer = Callable[..., Awaitable[ServerApp]]
HOST = "127.0.0.2"
RATE_HZ = 16_000


@pytest.fixture(scope="module")
def lying_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lecture said four times (about 88 s of speech), chained before a 5 s
    tone: the header claims 5 s, the file holds about 93 s."""
    tmp = tmp_path_factory.mktemp("lying")
    body = opus_ogg(tmp / "body.ogg", source=lecture_wav(tmp / "lecture.wav", 4))
    return lying_ogg(tmp / "lying.ogg", body)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated recordings: the lecture once (about 22 s), its first 18 s, and a
    minute of silence."""
    tmp = tmp_path_factory.mktemp("ledger")
    lecture = speech_samples(LECTURE)
    return {
        "lecture": write_wav(tmp / "lecture.wav", lecture),
        "eighteen": write_wav(tmp / "eighteen.wav", lecture[: 18 * RATE_HZ]),
        "silence": write_wav(tmp / "silence.wav", np.zeros(60 * RATE_HZ, dtype=np.float32)),
    }


@pytest.fixture(scope="module")
def media_server(media_files: dict[str, Path]) -> Iterator[str]:
    """Serves the generated recordings over HTTP on the test URL network."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = media_files.get(self.path.strip("/"))
            body = path.read_bytes() if path else b"no"
            self.send_response(200 if path else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


def _free(channel: grpc.aio.Channel, user: str) -> Api:
    return Api(channel, token_for(user, plan="free"))


async def _usage(api: Api) -> job_service_pb2.GetUsageResponse:
    return await api.jobs.GetUsage(job_service_pb2.GetUsageRequest(), metadata=api.metadata)


async def _reported_minutes_today(api: Api) -> float:
    report = await api.jobs.GetCostReport(
        job_service_pb2.GetCostReportRequest(), metadata=api.metadata
    )
    today = datetime.now(UTC).date().isoformat()
    return sum(d.audio_minutes for d in report.days if d.date == today)


async def _finish(api: Api, job: job_pb2.Job) -> job_pb2.Job:
    return (await api.watch(job.name))[-1].job


async def _url_job(api: Api, url: str) -> job_pb2.Job:
    request = job_service_pb2.CreateJobRequest(request_id=str(uuid.uuid4()), source_uri=url)
    return (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job


async def _refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(err.value)["ErrorInfo"].reason == "QUOTA_EXCEEDED"
    return err.value


# -- lengths are measured ---------------------------------------------------------------------


async def test_a_lying_header_cannot_pass_the_daily_minutes(
    extra_server: StartServer, user: str, lying_speech: Path
) -> None:
    app = await extra_server(free_audio_minutes_per_day=1.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _free(channel, user)
        media = await api.upload(lying_speech)
        job = await api.create(media.name, skip_cache=True)  # admitted: it claims 5 s
        assert (await _usage(api)).audio_minutes_today < 0.1
        done = await _finish(api, job)
        assert done.state == job_pb2.JOB_STATE_FAILED, done
        assert done.error.reason == "QUOTA_EXCEEDED"
        assert "more than 1.0 min" in done.error.message
        # Nothing was transcribed, so nothing was spent.
        assert (await _usage(api)).audio_minutes_today == 0
        assert await _reported_minutes_today(api) == 0


@pytest.fixture
def short_limit_worker(settings: Settings, data_dir: Path) -> Iterator[str]:
    """A worker of its own, on a queue of its own, whose media may last one minute."""
    queue = f"short-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        settings.model_copy(update={"queue_name": queue}),
        data_dir / f"{queue}.log",
        extra_env={"REELSCRIBE_MAX_MEDIA_DURATION_S": "60"},
        threads=1,
    )
    worker.start()
    yield queue
    worker.stop()


async def test_a_lying_header_cannot_pass_the_length_limit(
    extra_server: StartServer, short_limit_worker: str, user: str, lying_speech: Path
) -> None:
    app = await extra_server(queue_name=short_limit_worker, max_media_duration_s=60.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        media = await api.upload(lying_speech)
        done = await _finish(api, await api.create(media.name, skip_cache=True))
        assert done.state == job_pb2.JOB_STATE_FAILED, done
        assert done.error.reason == "MEDIA_TOO_LONG"
        assert "more than 1.0 min; the limit is 1.0 min" in done.error.message
        assert (await _usage(api)).audio_minutes_today == 0


# -- URL sources ------------------------------------------------------------------------------


async def test_url_jobs_cannot_exceed_the_daily_minutes(
    extra_server: StartServer, user: str, media_server: str
) -> None:
    app = await extra_server(free_audio_minutes_per_day=0.5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _free(channel, user)
        url = f"{media_server}/lecture"  # about 22 s: two do not fit in 30 s
        jobs = await asyncio.gather(*(_url_job(api, url) for _ in range(3)))
        done = await asyncio.gather(*(_finish(api, job) for job in jobs))
        states = sorted(job_pb2.JobState.Name(j.state) for j in done)
        assert states == ["JOB_STATE_FAILED", "JOB_STATE_FAILED", "JOB_STATE_SUCCEEDED"], done
        assert {j.error.reason for j in done if j.state == job_pb2.JOB_STATE_FAILED} == {
            "QUOTA_EXCEEDED"
        }
        succeeded = next(j for j in done if j.state == job_pb2.JOB_STATE_SUCCEEDED)
        used = (await _usage(api)).audio_minutes_today
        # media_duration is given in whole milliseconds; the ledger keeps the exact length.
        assert used == pytest.approx(
            succeeded.media_duration.ToTimedelta().total_seconds() / 60, abs=0.001 / 60
        )
        assert used <= 0.5


async def test_jobs_of_unknown_length_are_admitted_only_while_minutes_are_left(
    extra_server: StartServer,
    idle_queue: str,
    user: str,
    media_server: str,
    media_files: dict[str, Path],
) -> None:
    app = await extra_server(queue_name=idle_queue, free_audio_minutes_per_day=0.3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _free(channel, user)
        # 18 s reserves all of 0.3 min (the job waits on a queue nobody reads).
        await api.create((await api.upload(media_files["eighteen"])).name)
        assert (await _usage(api)).audio_minutes_today == pytest.approx(0.3)
        # A URL has no length until it is downloaded ...
        err = await _refused(_url_job(api, f"{media_server}/lecture"))
        assert "audio minutes" in err.details()
        # ... nor has media whose header claims none.
        unknown = ogg_claiming_duration((MEDIA_DIR / "ocean.ogg").read_bytes(), -1)
        media = await api.upload_bytes(unknown, "unknown.ogg")
        await _refused(api.create(media.name, skip_cache=True))


# -- races ------------------------------------------------------------------------------------


async def test_concurrent_creates_cannot_pass_the_stored_jobs_limit(
    extra_server: StartServer, idle_queue: str, user: str
) -> None:
    app = await extra_server(queue_name=idle_queue)  # free: at most 25 stored jobs
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = _free(channel, user)
        media = await api.upload(MEDIA_DIR / "ocean.ogg")
        for _ in range(24):
            await api.create(media.name, skip_cache=True)
        results = await asyncio.gather(
            *(api.create(media.name, skip_cache=True) for _ in range(30)), return_exceptions=True
        )
        created = [r for r in results if isinstance(r, job_pb2.Job)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(created) == 1 and len(refused) == 29, results
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert (await _usage(api)).stored_jobs == 25


# -- what spends minutes, and what gives none back ---------------------------------------------


async def test_deleting_jobs_gives_no_minutes_back(channel: grpc.aio.Channel, user: str) -> None:
    api = _free(channel, user)
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    used = (await _usage(api)).audio_minutes_today
    assert used == pytest.approx(job.media_duration.ToTimedelta().total_seconds() / 60)
    await api.jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=job.name), metadata=api.metadata)
    usage = await _usage(api)
    assert usage.stored_jobs == 0
    assert usage.audio_minutes_today == pytest.approx(used)
    assert await _reported_minutes_today(api) == pytest.approx(used)


async def test_only_what_is_transcribed_spends_minutes(
    channel: grpc.aio.Channel,
    extra_server: StartServer,
    idle_queue: str,
    user: str,
    media_files: dict[str, Path],
) -> None:
    api = _free(channel, user)
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await _finish(api, await api.create(media.name))
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    used = (await _usage(api)).audio_minutes_today
    assert used == pytest.approx(job.media_duration.ToTimedelta().total_seconds() / 60)

    # A cache hit transcribes nothing.
    hit = await api.create(media.name)
    assert hit.cache_hit and hit.state == job_pb2.JOB_STATE_SUCCEEDED
    # Nor does a child job: it reuses its parent's transcript.
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()),
        parent=job.name,
        options=job_pb2.JobOptions(extra_stages=[job_pb2.STAGE_ANALYZE]),
    )
    child = (await api.jobs.CreateJob(request, metadata=api.metadata)).job
    assert (await _finish(api, child)).state == job_pb2.JOB_STATE_SUCCEEDED
    # A minute of silence has nothing to transcribe.
    silent = await api.run(media_files["silence"])
    assert silent.state == job_pb2.JOB_STATE_SUCCEEDED
    assert silent.media_duration.ToTimedelta().total_seconds() == pytest.approx(60, abs=0.5)
    assert (await _usage(api)).audio_minutes_today == pytest.approx(used)

    # A job reserves its length while queued; cancelled before transcription it costs 0.
    idle = await extra_server(queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{idle.port}") as idle_channel:
        queued = await _free(idle_channel, user).create(media.name, skip_cache=True)
    assert (await _usage(api)).audio_minutes_today > used + 0.05
    await api.cancel(queued.name)
    assert (await _usage(api)).audio_minutes_today == pytest.approx(used)

    # Usage and the cost report read the same ledger.
    assert await _reported_minutes_today(api) == pytest.approx(used)
