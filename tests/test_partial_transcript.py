"""GetPartialTranscript on the real stack: a running job's transcript grows
chunk by chunk, and once merged it is the stored transcript's text.

A worker of its own cuts a repeated lecture into chunks of about 20 s, which
its two threads finish in any order. The test reads each chunk as soon as its
PARTIAL_RESULT event arrives, while the job runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from reelscribe.v1 import job_pb2, job_service_pb2
from reelscribe.v1 import transcript_service_pb2 as tpb
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.mediagen import lecture_wav
from tests.support.tokens import token_for

StartServer = Callable[..., Awaitable[ServerApp]]
PARTIAL = job_pb2.JOB_EVENT_KIND_PARTIAL_RESULT


@pytest.fixture(scope="module")
def lecture_66s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three readings of a lecture: three chunks, cut at the silences between them."""
    return lecture_wav(tmp_path_factory.mktemp("partial") / "lecture.wav", repeat=3)


@pytest.fixture
async def channel(
    extra_server: StartServer, short_chunk_worker: str
) -> AsyncIterator[grpc.aio.Channel]:
    app = await extra_server(queue_name=short_chunk_worker)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        yield ch


async def _partial(api: Api, name: str, **fields: object) -> tpb.GetPartialTranscriptResponse:
    return await api.transcripts.GetPartialTranscript(
        tpb.GetPartialTranscriptRequest(name=name, **fields),  # type: ignore[arg-type]
        metadata=api.metadata,
        timeout=30,
    )


async def _refused(api: Api, name: str, **fields: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _partial(api, name, **fields)
    return caught.value


def _reason(exc: grpc.aio.AioRpcError) -> str:
    return error_details(exc)["ErrorInfo"].reason  # type: ignore[attr-defined,no-any-return]


def _texts(segments: object) -> list[str]:
    return [s.text for s in segments]  # type: ignore[attr-defined]


async def test_the_transcript_grows_chunk_by_chunk_then_is_the_stored_one(
    channel: grpc.aio.Channel, lecture_66s: Path, user: str
) -> None:
    api = Api(channel, token_for(user))
    stranger = Api(channel, token_for(f"{user}-stranger"))
    job = await api.create((await api.upload(lecture_66s)).name, skip_cache=True)
    bad = await _refused(api, job.name, chunk_indexes=[-1])
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = error_details(bad)["BadRequest"].field_violations  # type: ignore[attr-defined]
    assert [v.field for v in violations] == ["chunk_indexes"]

    seen: dict[int, tpb.PartialChunk] = {}
    lost_to_merge: list[int] = []
    first: tpb.GetPartialTranscriptResponse | None = None
    first_index = -1
    watch = api.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata, timeout=180
    )
    async for reply in watch:
        event = reply.event
        if event.kind != PARTIAL:
            continue
        try:
            got = await _partial(api, job.name, chunk_indexes=[event.chunk_index])
        except grpc.aio.AioRpcError as exc:
            # Only the chunk that finished last can lose the race with the merge.
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
            assert _reason(exc) == "TRANSCRIPT_READY"
            lost_to_merge.append(event.chunk_index)
            continue
        assert got.name == f"{job.name}/transcript"
        assert [c.index for c in got.chunks] == [event.chunk_index]
        assert got.chunk_count == event.chunk_count
        chunk = got.chunks[0]
        assert chunk.segments and all(s.text.strip() for s in chunk.segments)
        for s in chunk.segments:
            assert chunk.start_seconds - 0.5 <= s.start_seconds < s.end_seconds
            assert s.end_seconds <= chunk.end_seconds + 0.5
            assert s.words and "".join(w.text for w in s.words).strip() == s.text.strip()
        seen[event.chunk_index] = chunk
        if first is None:
            first_index = event.chunk_index
            # Mid-job (the merge waits for every chunk): the whole view so far,
            # without words; the job is someone else's for a stranger.
            first = await _partial(api, job.name, omit_words=True)
            assert (await api.get(job.name)).state == job_pb2.JOB_STATE_RUNNING
            missing = await _refused(stranger, job.name)
            assert missing.code() == grpc.StatusCode.NOT_FOUND
            assert _reason(missing) == "JOB_NOT_FOUND"
    assert event.job.state == job_pb2.JOB_STATE_SUCCEEDED, event.job.error

    assert first is not None
    n = first.chunk_count
    assert n >= 3
    assert 1 <= first.finished_chunk_count < n
    assert first_index in {c.index for c in first.chunks}
    assert len(first.chunks) == first.finished_chunk_count
    assert all(not s.words for c in first.chunks for s in c.segments)
    assert sorted([*seen, *lost_to_merge]) == list(range(n))
    assert len(lost_to_merge) <= 1, lost_to_merge

    # Each chunk's provisional text is the stored transcript's text over its span.
    transcript = await api.transcript(job.name)
    for chunk in seen.values():
        stored = [
            s
            for s in transcript.segments
            if chunk.start_seconds <= (s.start_seconds + s.end_seconds) / 2 < chunk.end_seconds
        ]
        assert _texts(stored) == _texts(chunk.segments), chunk.index
    if not lost_to_merge:
        ordered = [s for i in sorted(seen) for s in seen[i].segments]
        assert _texts(ordered) == _texts(transcript.segments)

    # Merged: the stored transcript is the one to read; still nobody else's.
    ready = await _refused(api, job.name)
    assert ready.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(ready) == "TRANSCRIPT_READY" and "GetTranscript" in ready.details()
    gone = await _refused(stranger, f"{job.name}/transcript")
    assert gone.code() == grpc.StatusCode.NOT_FOUND
