"""The Python client (betterproto2 messages over grpc.aio) against the real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from reelscribe_client import ReelscribeClient, ReelscribeError, v1

from server.app import ServerApp
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.tokens import token_for


class DroppingProxy:
    """A TCP proxy to the server that can cut every open connection at once."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop_all(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.drop_all()
        self._server.close()


@pytest.fixture
async def client(server: ServerApp) -> AsyncIterator[ReelscribeClient]:
    async with ReelscribeClient(f"127.0.0.1:{server.port}", token_for("py-client")) as c:
        yield c


async def test_upload_create_watch_export(client: ReelscribeClient) -> None:
    media = await client.upload(MEDIA_DIR / "volcano.ogg")
    job = await client.create_job(media=media.name, options=v1.JobOptions(skip_cache=True))
    events = [e async for e in client.watch(job.name)]
    assert events[0].kind == v1.JobEventKind.SNAPSHOT
    logged = [e.seq for e in events if e.seq]
    assert logged == list(range(1, len(logged) + 1))
    assert events[-1].job is not None and events[-1].job.state == v1.JobState.SUCCEEDED
    srt = await client.export(job.name, v1.ExportFormat.SRT)
    assert srt.startswith("1\n00:00:")
    listed = [j.name async for j in client.list_jobs(page_size=1)]
    assert job.name in listed


async def test_delete_media(client: ReelscribeClient) -> None:
    media = await client.upload(str(MEDIA_DIR / "volcano.ogg"))  # a str path works too
    await client.delete_media(media.name)
    with pytest.raises(ReelscribeError) as err:
        await client.create_job(media=media.name)
    assert err.value.reason == "MEDIA_NOT_FOUND"
    with pytest.raises(ReelscribeError) as err:
        await client.delete_media(media.name)
    assert err.value.reason == "MEDIA_NOT_FOUND"


async def test_errors_carry_reason_details_and_request_id(client: ReelscribeClient) -> None:
    with pytest.raises(ReelscribeError) as err:
        await client.get_job("jobs/5f0c4a9e-1d57-4b8e-9a61-1f4ac1b0a111")
    assert err.value.reason == "JOB_NOT_FOUND" and err.value.request_id
    with pytest.raises(ReelscribeError) as err:
        await client.get_job("jobs/nope")
    assert "name" in err.value.field_violations


async def test_watch_resumes_across_a_dropped_connection(server: ServerApp, tmp_path: Path) -> None:
    proxy = DroppingProxy(server.port)
    await proxy.start()
    lecture = lecture_wav(tmp_path / "lecture.wav", repeat=4)
    try:
        async with ReelscribeClient(f"127.0.0.1:{proxy.port}", token_for("py-client")) as c:
            media = await c.upload(lecture)
            job = await c.create_job(media=media.name, options=v1.JobOptions(skip_cache=True))
            seen: list[v1.JobEvent] = []
            dropped = False
            async for event in c.watch(job.name):
                seen.append(event)
                if not dropped and len([e for e in seen if e.seq]) == 3:
                    proxy.drop_all()  # the network goes away mid-stream
                    dropped = True
            assert dropped
            assert sum(e.kind == v1.JobEventKind.SNAPSHOT for e in seen) >= 2  # reconnected
            logged = [e.seq for e in seen if e.seq]
            assert logged == list(range(1, len(logged) + 1))
            assert seen[-1].job is not None and seen[-1].job.state == v1.JobState.SUCCEEDED
    finally:
        await proxy.stop()


async def test_child_job_highlights_clip_summary_and_question(
    client: ReelscribeClient, tmp_path: Path
) -> None:
    media = await client.upload(MEDIA_DIR / "volcano.ogg")
    parent = await client.create_job(media=media.name)
    async for _ in client.watch(parent.name):
        pass
    child = await client.create_job(
        parent=parent.name,
        options=v1.JobOptions(extra_stages=[v1.Stage.RENDER_CLIPS], highlight_count=1),
    )
    events = [e async for e in client.watch(child.name)]
    assert events[-1].job is not None and events[-1].job.state == v1.JobState.SUCCEEDED
    (highlight,) = await client.highlights(child.name)
    clip = tmp_path / "clip.m4a"
    assert await client.download_clip(highlight.name, clip) == highlight.clip_size_bytes
    assert clip.stat().st_size == highlight.clip_size_bytes
    summary = await client.summary(child.name, v1.SummaryFormat.BULLETS)
    assert summary.bullets and summary.provider == "local"
    assert await client.chapters(child.name)
    answer = await client.ask("what rises through the crust", job=parent.name)
    assert answer.citations and answer.citations[0].job == parent.name
    report = await client.cost_report()
    assert report.total_cost_usd > 0


async def test_get_cancel_delete_job_and_usage(client: ReelscribeClient, tmp_path: Path) -> None:
    before = await client.get_usage()
    assert before.plan  # the test tokens carry a plan
    lecture = lecture_wav(tmp_path / "lecture.wav", repeat=4)
    media = await client.upload(str(lecture))
    job = await client.create_job(
        media=media.name, options=v1.JobOptions(skip_cache=True), labels={"take": "1"}
    )
    assert (await client.get_job(job.name)).labels == {"take": "1"}
    with pytest.raises(ReelscribeError) as err:
        await client.delete_job(job.name)  # still queued or running
    assert err.value.reason == "JOB_ACTIVE"
    usage = await client.get_usage()
    assert usage.stored_jobs == before.stored_jobs + 1
    assert usage.stored_bytes >= before.stored_bytes + lecture.stat().st_size
    cancelled = await client.cancel_job(job.name)
    assert cancelled.state == v1.JobState.CANCELLED
    fetched = await client.get_job(job.name)
    assert fetched.state == v1.JobState.CANCELLED and fetched.error is not None
    await client.delete_job(job.name)
    with pytest.raises(ReelscribeError) as err:
        await client.get_job(job.name)
    assert err.value.reason == "JOB_NOT_FOUND"
    assert (await client.get_usage()).stored_jobs == before.stored_jobs


async def test_watch_jobs_follows_every_job_and_resumes_by_cursor(
    server: ServerApp, tmp_path: Path
) -> None:
    proxy = DroppingProxy(server.port)
    await proxy.start()
    user = token_for(f"py-watch-jobs-{tmp_path.name}")
    try:
        async with (
            ReelscribeClient(f"127.0.0.1:{server.port}", user) as direct,
            ReelscribeClient(f"127.0.0.1:{proxy.port}", user) as c,
        ):
            media = await direct.upload(MEDIA_DIR / "ocean.ogg")
            # Heartbeats say the watch is live before the jobs are created.
            stream = c.watch_jobs(include_heartbeats=True)
            seen: list[v1.WatchJobsResponse] = []
            ended: set[str] = set()
            created: list[str] = []
            dropped = False

            async def create_two() -> None:
                for _ in range(2):
                    job = await direct.create_job(
                        media=media.name, options=v1.JobOptions(skip_cache=True)
                    )
                    created.append(job.name)

            async with asyncio.timeout(120):
                creating: asyncio.Task[None] | None = None
                async for reply in stream:
                    if creating is None:
                        creating = asyncio.create_task(create_two())
                    event = reply.event
                    assert event is not None
                    if event.kind == v1.JobEventKind.HEARTBEAT or event.job is None:
                        continue
                    seen.append(reply)
                    if not dropped and len([r for r in seen if r.event and r.event.seq]) == 3:
                        proxy.drop_all()  # the network goes away mid-stream
                        dropped = True
                    if event.seq and event.job.state == v1.JobState.SUCCEEDED:
                        ended.add(event.job.name)
                    if len(created) == 2 and ended >= set(created):
                        break
                await stream.aclose()
            assert dropped
            for name in created:
                logged = [
                    r.event.seq
                    for r in seen
                    if r.event and r.event.job and r.event.job.name == name and r.event.seq
                ]
                assert logged == list(range(1, len(logged) + 1)), (name, logged)
            cursors = [int(r.cursor) for r in seen if r.cursor and r.event and r.event.seq]
            assert cursors == sorted(set(cursors))
    finally:
        await proxy.stop()


async def test_an_upload_refused_by_the_rate_limit_waits_and_succeeds(
    extra_server: Callable[..., Awaitable[ServerApp]],
) -> None:
    """Refused before anything was stored, the upload does not exist yet: the
    client waits as told and starts it again instead of failing NOT_FOUND."""
    app = await extra_server(rate_limits={"UploadMedia": (1.0, 1)})
    async with ReelscribeClient(f"127.0.0.1:{app.port}", token_for("py-client-rl")) as c:
        first = await c.upload(MEDIA_DIR / "ocean.ogg")
        second = await c.upload(MEDIA_DIR / "volcano.ogg")  # inside the same second
    assert first.name != second.name and second.size_bytes > 0
