"""A job's progress on the real stack: one bar across every stage, never backwards.

A worker of its own cuts a repeated lecture into short chunks, which its two
threads finish in any order; the job also runs ANALYZE and HIGHLIGHTS.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from reelscribe.db import events as events_db
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.mediagen import lecture_wav
from tests.support.tokens import token_for

StartServer = Callable[..., Awaitable[ServerApp]]
PARTIAL = job_pb2.JOB_EVENT_KIND_PARTIAL_RESULT


@pytest.fixture(scope="module")
def lecture_88s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lecture_wav(tmp_path_factory.mktemp("progress") / "lecture.wav", repeat=4)


@pytest.fixture
async def chunky_api(
    extra_server: StartServer, short_chunk_worker: str, user: str
) -> AsyncIterator[Api]:
    app = await extra_server(queue_name=short_chunk_worker)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield Api(channel, token_for(user))


def _logged(evs: list[job_pb2.JobEvent]) -> list[job_pb2.JobEvent]:
    return [e for e in evs if e.seq]


def _assert_monotonic_to_one(evs: list[job_pb2.JobEvent]) -> None:
    progress = [e.job.progress for e in evs]
    shown = [(e.seq, job_pb2.Stage.Name(e.job.stage), round(e.job.progress, 3)) for e in evs]
    assert progress == sorted(progress), shown
    assert progress[-1] == 1.0, shown
    assert evs[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED, evs[-1].job.error
    assert all(0.0 <= e.stage_progress <= 1.0 for e in evs)


async def test_progress_runs_once_from_0_to_1_across_chunks_and_insight_stages(
    chunky_api: Api, lecture_88s: Path
) -> None:
    api = chunky_api
    media = await api.upload(lecture_88s)
    job = await api.create(
        media.name,
        skip_cache=True,
        extra_stages=[job_pb2.STAGE_ANALYZE, job_pb2.STAGE_HIGHLIGHTS],
        highlight_count=1,
    )
    evs = _logged(await api.watch(job.name))
    _assert_monotonic_to_one(evs)

    # Chunk messages count the chunks done, whichever one finished.
    partial = [e for e in evs if e.kind == PARTIAL]
    n = partial[0].chunk_count
    assert n >= 3, [e.message for e in partial]
    assert [e.message for e in partial] == [f"{k} of {n} chunks done" for k in range(1, n + 1)]
    assert sorted(e.chunk_index for e in partial) == list(range(n))
    assert all(e.chunk_count == n for e in partial)
    # Transcription's stage fraction grows with the audio done, up to all of it.
    fractions = [e.stage_progress for e in partial]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(f > 0.0 for f in fractions)

    # The insight stages go on from where transcription ended, not from 0.
    started = {
        e.job.stage: e.job.progress for e in evs if e.kind == job_pb2.JOB_EVENT_KIND_STAGE_STARTED
    }
    transcribed = partial[-1].job.progress
    assert 0.5 < transcribed < started[job_pb2.STAGE_ANALYZE]
    assert started[job_pb2.STAGE_ANALYZE] < started[job_pb2.STAGE_HIGHLIGHTS] < 1.0
    # Every stage the job ran moved the bar.
    assert len({round(e.job.progress, 6) for e in evs}) >= n + 6


async def test_a_child_job_runs_from_0_to_1_over_its_own_stages(
    chunky_api: Api, lecture_88s: Path
) -> None:
    api = chunky_api
    parent = await api.run(lecture_88s)
    assert parent.state == job_pb2.JOB_STATE_SUCCEEDED
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()),
        parent=parent.name,
        options=job_pb2.JobOptions(extra_stages=[job_pb2.STAGE_HIGHLIGHTS], highlight_count=1),
    )
    child = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    evs = _logged(await api.watch(child.name))
    _assert_monotonic_to_one(evs)
    started = [
        (e.job.stage, e.job.progress) for e in evs if e.kind == job_pb2.JOB_EVENT_KIND_STAGE_STARTED
    ]
    assert [s for s, _ in started] == [job_pb2.STAGE_ANALYZE, job_pb2.STAGE_HIGHLIGHTS]
    assert started[0][1] == 0.0 and 0.3 < started[1][1] < 1.0
    # Finishing a stage moves the bar by that stage's share.
    finished = {
        e.job.stage: e.job.progress for e in evs if e.kind == job_pb2.JOB_EVENT_KIND_STAGE_FINISHED
    }
    for stage, at_start in started:
        assert at_start < finished[stage] < 1.0, (job_pb2.Stage.Name(stage), evs)


async def test_the_event_log_never_lowers_a_jobs_progress(
    extra_server: StartServer, idle_queue: str, user: str, server: ServerApp, lecture_88s: Path
) -> None:
    # A job nobody works on; a stage that runs again after a crash reports
    # less than was reached, and the job keeps what it had.
    app = await extra_server(queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        job = await api.create((await api.upload(lecture_88s)).name, skip_cache=True)
    job_id = uuid.UUID(job.name.split("/")[1])
    kind = job_pb2.JOB_EVENT_KIND_PROGRESS
    seen = []
    async with server.deps.pool.acquire() as conn:
        for value in (0.4, 0.1, 0.0, 0.6):
            recorded = await events_db.append_event(
                conn, job_id, kind=kind, set_fields={"progress": value}
            )
            assert recorded is not None
            seen.append(recorded.event.job.progress)
    assert seen == pytest.approx([0.4, 0.4, 0.4, 0.6])
