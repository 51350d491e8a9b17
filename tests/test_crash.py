"""Crash safety, shown by really killing processes and really losing messages."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest

from reelscribe.queue import queue_names
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import TERMINAL, Api
from tests.support.media import MEDIA_DIR, POISON
from tests.support.mediagen import lecture_wav
from tests.support.processes import WorkerProcess


async def _supervise_until_done(
    api: Api, name: str, worker: WorkerProcess, timeout_s: float = 150
) -> job_pb2.Job:
    """Poll a job to its end, restarting the worker whenever it dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        worker.ensure_running()
        job = await api.get(name)
        if job.state in TERMINAL:
            return job
        await asyncio.sleep(0.5)
    raise AssertionError(f"{name} did not finish: {await api.get(name)}")


@pytest.fixture(scope="module")
def lecture_3min(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lecture_wav(tmp_path_factory.mktemp("crash") / "lecture.wav", repeat=8)


async def test_sigkill_mid_transcription_completes_exactly_once(
    api: Api, worker: WorkerProcess, lecture_3min: Path, server: ServerApp
) -> None:
    media = await api.upload(lecture_3min)
    reference = await api.run(media.name, skip_cache=True)
    assert reference.state == job_pb2.JOB_STATE_SUCCEEDED
    expected = [(s.start_seconds, s.text) for s in (await api.transcript(reference.name)).segments]

    job = await api.create(media.name, skip_cache=True)
    call = api.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata, timeout=60
    )
    async for reply in call:
        if reply.event.job.stage == job_pb2.STAGE_TRANSCRIBE:
            await asyncio.sleep(0.5)
            worker.signal_all(signal.SIGKILL)  # the whole worker, mid-chunk
            break
    call.cancel()
    await asyncio.sleep(0.5)
    assert worker.proc is not None and worker.proc.poll() is not None

    final = await _supervise_until_done(api, job.name, worker)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    events = [e for e in await api.watch(job.name) if e.seq]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.job.state in TERMINAL for e in events) == 1
    got = [(s.start_seconds, s.text) for s in (await api.transcript(job.name)).segments]
    assert got == expected  # no duplicate and no missing segment
    job_id = uuid.UUID(job.name.split("/")[1])
    async with server.deps.pool.acquire() as conn:
        idx = [
            r["idx"]
            for r in await conn.fetch(
                "SELECT idx FROM segments WHERE job_id = $1 ORDER BY idx", job_id
            )
        ]
    assert idx == list(range(len(expected)))


async def test_poison_file_fails_after_bounded_attempts(
    api: Api, worker: WorkerProcess, settings: object
) -> None:
    job = await api.create((await api.upload(POISON)).name)
    final = await _supervise_until_done(api, job.name, worker)
    assert final.state == job_pb2.JOB_STATE_FAILED
    assert final.error.reason == "TOO_MANY_ATTEMPTS", final.error
    assert final.attempts == settings.max_job_attempts  # type: ignore[attr-defined]
    # The worker serves other jobs again.
    worker.ensure_running()
    ok = await api.run(MEDIA_DIR / "ocean.ogg", skip_cache=True)
    assert ok.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_lost_broker_message_is_reconciled(
    api: Api, worker: WorkerProcess, server: ServerApp
) -> None:
    worker.ensure_running()
    media = await api.upload(MEDIA_DIR / "volcano.ogg")
    worker.signal_all(signal.SIGSTOP)
    try:
        job = await api.create(media.name, skip_cache=True)
        # Lose every queued message, as a Redis without persistence would on restart.
        redis = server.deps.redis
        queue_name = server.settings.queue_name
        deleted = await redis.delete(
            *(f"dramatiq:{q}{part}" for q in queue_names(queue_name) for part in ("", ".msgs"))
        )
        assert deleted >= 1
    finally:
        worker.signal_all(signal.SIGCONT)
    final = await _supervise_until_done(api, job.name, worker, timeout_s=60)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    assert final.attempts == 1
