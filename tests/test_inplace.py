"""A job whose speech fits one chunk runs it and its merge inside the prepare
message (workers/inplace.py): the same events, cancellation and crash safety
as a fanned-out job, shown on the real stack with a real worker."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest

from reelscribe import queue
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from server.jobs.creation import prepare_actor
from tests.support.api import TERMINAL, Api
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.processes import WorkerProcess

K = job_pb2


async def _waits_on(server: ServerApp, job_id: uuid.UUID) -> tuple[str | None, str | None, int]:
    """(the chunk's message, the job's pending message, chunks) of a one-chunk job."""
    async with server.deps.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT message_id FROM chunks WHERE job_id = $1 AND idx = 0) AS chunk,"
            " (SELECT count(*) FROM chunks WHERE job_id = $1) AS chunks,"
            " pending_message_id FROM jobs WHERE id = $1",
            job_id,
        )
    return row["chunk"], row["pending_message_id"], row["chunks"]


async def test_a_short_job_runs_in_place_with_every_event(api: Api, server: ServerApp) -> None:
    job = await api.create((await api.upload(MEDIA_DIR / "ocean.ogg")).name, skip_cache=True)
    events = [e for e in await api.watch(job.name) if e.seq]
    assert events[-1].job.state == K.JOB_STATE_SUCCEEDED, events[-1].job.error
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.job.state in TERMINAL for e in events) == 1
    # Every stage is still announced, in order, and progress never goes back.
    started = [e.stage for e in events if e.kind == K.JOB_EVENT_KIND_STAGE_STARTED]
    assert started[:3] == [K.STAGE_DETECT_SPEECH, K.STAGE_TRANSCRIBE, K.STAGE_MERGE], started
    partial = [e for e in events if e.kind == K.JOB_EVENT_KIND_PARTIAL_RESULT]
    assert [(e.chunk_index, e.chunk_count) for e in partial] == [(0, 1)]
    progress = [e.job.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # The chunk never had a message of its own: it waited on the prepare message.
    chunk_message, prepare_message, chunks = await _waits_on(
        server, uuid.UUID(job.name.split("/")[1])
    )
    assert chunks == 1 and chunk_message is not None and chunk_message == prepare_message
    assert (await api.get(job.name)).attempts == 1


def test_media_that_fits_one_chunk_takes_the_short_lane() -> None:
    assert prepare_actor(None, 30.0, 120.0) == queue.PREPARE_SHORT_JOB
    assert prepare_actor(None, 120.0, 120.0) == queue.PREPARE_SHORT_JOB
    assert prepare_actor(None, 121.0, 120.0) == queue.PREPARE_JOB
    assert prepare_actor(None, None, 120.0) == queue.PREPARE_JOB  # length unknown
    assert prepare_actor("https://example.com/a.mp3", 5.0, 120.0) == queue.PREPARE_JOB
    assert queue.queue_for("jobs", queue.PREPARE_SHORT_JOB) == "jobs" + queue.SHORT_SUFFIX
    # Shortest job first, then the stages of started jobs, then new long jobs.
    assert queue.PRIORITIES[queue.PREPARE_SHORT_JOB] < queue.PRIORITIES[queue.TRANSCRIBE_CHUNK]
    assert queue.PRIORITIES[queue.TRANSCRIBE_CHUNK] < queue.NEW_JOB_PRIORITY


@pytest.fixture(scope="module")
def one_chunk_lecture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # About 88 s of speech: one chunk (120 s target), several decoding windows.
    return lecture_wav(tmp_path_factory.mktemp("inplace") / "lecture.wav", repeat=4)


async def _stage_reached(api: Api, name: str, stage: int) -> None:
    call = api.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=name), metadata=api.metadata, timeout=60
    )
    async for reply in call:
        if reply.event.job.stage == stage:
            break
    call.cancel()


async def test_sigkill_in_place_resumes_and_completes_exactly_once(
    api: Api, worker: WorkerProcess, one_chunk_lecture: Path, server: ServerApp
) -> None:
    worker.ensure_running()
    media = await api.upload(one_chunk_lecture)
    reference = await api.run(media.name, skip_cache=True)
    assert reference.state == K.JOB_STATE_SUCCEEDED, reference.error
    expected = [(s.start_seconds, s.text) for s in (await api.transcript(reference.name)).segments]

    job = await api.create(media.name, skip_cache=True)
    job_id = uuid.UUID(job.name.split("/")[1])
    await _stage_reached(api, job.name, K.STAGE_TRANSCRIBE)
    await asyncio.sleep(0.5)  # inside the chunk, which runs in the prepare message
    chunk_message, prepare_message, _ = await _waits_on(server, job_id)
    assert chunk_message == prepare_message
    assert (await api.get(job.name)).stage == K.STAGE_TRANSCRIBE  # still transcribing
    worker.signal_all(signal.SIGKILL)
    await asyncio.sleep(0.5)
    assert worker.proc is not None and worker.proc.poll() is not None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 150
    while (final := await api.get(job.name)).state not in TERMINAL:
        assert loop.time() < deadline, final
        worker.ensure_running()
        await asyncio.sleep(0.5)
    assert final.state == K.JOB_STATE_SUCCEEDED, final.error
    assert final.attempts == 2  # the prepare message was delivered again
    events = [e for e in await api.watch(job.name) if e.seq]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.job.state in TERMINAL for e in events) == 1
    got = [(s.start_seconds, s.text) for s in (await api.transcript(job.name)).segments]
    assert got == expected  # nothing lost, nothing twice


async def test_cancel_in_place_stops_the_chunk(
    api: Api, one_chunk_lecture: Path, server: ServerApp
) -> None:
    job = await api.create((await api.upload(one_chunk_lecture)).name, skip_cache=True)
    await _stage_reached(api, job.name, K.STAGE_TRANSCRIBE)
    await asyncio.sleep(0.3)
    await api.jobs.CancelJob(
        job_service_pb2.CancelJobRequest(name=job.name), metadata=api.metadata, timeout=10
    )
    events = [e for e in await api.watch(job.name, timeout_s=30) if e.seq]
    assert events[-1].job.state == K.JOB_STATE_CANCELLED
    assert sum(e.job.state in TERMINAL for e in events) == 1
    async with server.deps.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM segments WHERE job_id = $1", uuid.UUID(job.name.split("/")[1])
        )
    assert left == 0  # a cancelled job keeps no partial results
