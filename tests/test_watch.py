"""Progress streams: resume without gaps, identical fan-out, Redis restarts, bounded buffers."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import grpc
import pytest

from reelscribe import events
from reelscribe.embedded import EmbeddedUrls
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import TERMINAL, Api
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.processes import WorkerProcess


@pytest.fixture(scope="module")
def lecture_90s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lecture_wav(tmp_path_factory.mktemp("watch") / "lecture.wav", repeat=4)


def _seqs(evs: list[job_pb2.JobEvent]) -> list[int]:
    return [e.seq for e in evs if e.seq]


async def test_disconnect_and_resume_gives_exactly_every_event(api: Api, lecture_90s: Path) -> None:
    job = await api.create((await api.upload(lecture_90s)).name, skip_cache=True)
    first: list[job_pb2.JobEvent] = []
    call = api.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata)
    async for reply in call:
        first.append(reply.event)
        if len(_seqs(first)) == 3:
            break
    call.cancel()  # the client goes away mid-job
    rest = await api.watch(job.name, after_seq=_seqs(first)[-1])
    assert rest[0].kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT
    union = _seqs(first) + _seqs(rest)
    assert union == list(range(1, len(union) + 1))
    assert rest[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED
    # Closing the first watch did not cancel anything.
    assert (await api.get(job.name)).state == job_pb2.JOB_STATE_SUCCEEDED


async def test_many_watchers_see_identical_sequences(api: Api, lecture_90s: Path) -> None:
    job = await api.create((await api.upload(lecture_90s)).name, skip_cache=True)
    results = await asyncio.gather(*(api.watch(job.name) for _ in range(5)))
    logged = [[(e.seq, e.kind, e.job.state, e.job.progress) for e in r if e.seq] for r in results]
    assert all(seq == logged[0] for seq in logged)
    assert [s for s, *_ in logged[0]] == list(range(1, len(logged[0]) + 1))


async def test_client_deadline_ends_only_the_watch(api: Api, lecture_90s: Path) -> None:
    job = await api.create((await api.upload(lecture_90s)).name, skip_cache=True)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.watch(job.name, timeout_s=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    final = (await api.watch(job.name))[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_redis_restart_mid_job_loses_no_event(
    api: Api, lecture_90s: Path, stack: EmbeddedUrls, server: ServerApp
) -> None:
    if stack.valkey is None:
        pytest.skip("needs the embedded Valkey to restart it")
    job = await api.create((await api.upload(lecture_90s)).name, skip_cache=True)
    seen: list[job_pb2.JobEvent] = []
    call = api.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata, timeout=120
    )
    restarted = False
    async for reply in call:
        seen.append(reply.event)
        if not restarted and reply.event.job.stage == job_pb2.STAGE_DETECT_SPEECH:
            await asyncio.to_thread(stack.valkey.restart)
            restarted = True
    assert restarted
    assert seen[-1].job.state in TERMINAL
    logged = _seqs(seen)
    assert logged == list(range(1, len(logged) + 1))
    assert logged[-1] == (await api.get(job.name)).last_event_seq
    assert seen[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED, seen[-1].job.error
    await asyncio.wait_for(server.deps.hub.connected.wait(), 10)


async def test_a_watcher_that_never_reads_stays_bounded(
    api: Api, server: ServerApp, worker: WorkerProcess
) -> None:
    # A watcher that stops reading is held back by HTTP/2 flow control; its
    # handler then stops draining its hub buffer. That buffer must stay
    # bounded however much is published, and the watcher recovers from the log.
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    worker.signal_all(signal.SIGSTOP)  # the job stays queued while we flood
    try:
        job = await api.create(media.name, skip_cache=True)
        channel = events.job_channel(uuid.UUID(job.name.split("/")[1]))
        hub = server.deps.hub
        async with hub.subscribe(channel) as stuck:  # a handler blocked on a slow client
            junk = job_pb2.JobEvent(seq=1, job=job, message="x" * 2_000).SerializeToString()
            for _ in range(1000):
                await server.deps.redis.publish(channel, junk)
            for _ in range(50):
                if stuck.overflowed:
                    break
                await asyncio.sleep(0.05)
            assert stuck.overflowed
            assert stuck.queue.qsize() == server.settings.watch_buffer_events
        assert channel not in hub._subs  # leaving the block frees it
    finally:
        worker.signal_all(signal.SIGCONT)
    # A watcher that falls behind reads the true log from Postgres.
    final = await api.watch(job.name)
    logged = _seqs(final)
    assert logged == list(range(1, len(logged) + 1))
    assert final[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_watch_all_jobs_with_cursor_and_filter(api: Api) -> None:
    stream = api.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=api.metadata)
    # The first heartbeat shows the stream is live before any job exists, so
    # every event arrives live (no snapshots of already-running jobs).
    assert (await stream.read()).event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    names = {(await api.create(media.name, skip_cache=True)).name for _ in range(2)}
    got: list[job_service_pb2.WatchJobsResponse] = []
    done: set[str] = set()
    while True:
        reply = await stream.read()
        if reply.event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT:
            continue
        got.append(reply)
        if reply.event.job.state in TERMINAL:
            done.add(reply.event.job.name)
        if done == names:
            break
    stream.cancel()
    cursors = [int(r.cursor) for r in got]
    assert cursors == list(range(cursors[0], cursors[0] + len(cursors)))
    assert {r.event.job.name for r in got} == names
    for name in names:  # each job's own sequence is complete and in order
        assert [r.event.seq for r in got if r.event.job.name == name] == list(
            range(1, 1 + sum(r.event.job.name == name for r in got))
        )

    # Resuming from a cursor replays exactly what came after it, filtered by state.
    resumed = api.jobs.WatchJobs(
        job_service_pb2.WatchJobsRequest(
            after_cursor=got[2].cursor, states=[job_pb2.JOB_STATE_SUCCEEDED]
        ),
        metadata=api.metadata,
    )
    replayed = []
    async for reply in resumed:
        if reply.event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT:
            break
        replayed.append(reply)
    resumed.cancel()
    assert [r.cursor for r in replayed] == [
        r.cursor for r in got[3:] if r.event.job.state == job_pb2.JOB_STATE_SUCCEEDED
    ]
    assert len(replayed) == 2

    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in api.jobs.WatchJobs(
            job_service_pb2.WatchJobsRequest(after_cursor=str(10**9)), metadata=api.metadata
        ):
            pass
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
