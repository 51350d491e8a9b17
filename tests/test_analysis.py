"""Summaries, chapters, highlights, clips, questions and costs on the real stack.

The session worker has no Gemini key, so everything here runs the offline
`local` provider on real transcripts of real (generated) media.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest

from reelscribe.v1 import job_pb2, job_service_pb2, search_service_pb2, transcript_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.clips import decoded_seconds, read_clip
from tests.support.grpcweb import read_clip_web
from tests.support.media import LECTURE, MEDIA_DIR
from tests.support.mediagen import speech_samples, write_video, write_wav

tpb = transcript_service_pb2


@pytest.fixture(scope="module")
def talk_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video with three spoken topics (photosynthesis, the ocean, volcanoes)."""
    samples = np.concatenate(
        [
            speech_samples(LECTURE),
            speech_samples(MEDIA_DIR / "ocean.ogg"),
            speech_samples(MEDIA_DIR / "volcano.ogg"),
        ]
    )
    path = tmp_path_factory.mktemp("video") / "talk.mp4"
    return write_video(path, len(samples) / 16000, samples)


async def child(api: Api, parent: str, **options: object) -> job_pb2.Job:
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()), parent=parent, options=job_pb2.JobOptions(**options)
    )  # type: ignore[arg-type]
    job = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    events = await api.watch(job.name)
    return events[-1].job


SRT_TIME = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)")


def srt_cues(text: str) -> list[tuple[float, float]]:
    def sec(h: str, m: str, s: str, ms: str) -> float:
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    return [(sec(*m.groups()[:4]), sec(*m.groups()[4:])) for m in SRT_TIME.finditer(text)]


async def test_video_job_with_highlight_clips(
    api: Api, talk_video: Path, server: ServerApp
) -> None:
    media = (await api.upload(talk_video)).name
    job = await api.create(
        media,
        extra_stages=[job_pb2.STAGE_RENDER_CLIPS],
        highlight_count=2,
    )
    events = await api.watch(job.name)
    final = events[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    started = [e.stage for e in events if e.kind == job_pb2.JOB_EVENT_KIND_STAGE_STARTED]
    # Clips bring the stages they need, in order, after transcription.
    order = [job_pb2.STAGE_ANALYZE, job_pb2.STAGE_HIGHLIGHTS, job_pb2.STAGE_RENDER_CLIPS]
    assert [s for s in started if s in order] == order
    assert started.index(job_pb2.STAGE_TRANSCRIBE) < started.index(job_pb2.STAGE_ANALYZE)

    reply = await api.transcripts.ListHighlights(
        tpb.ListHighlightsRequest(name=job.name), metadata=api.metadata, timeout=30
    )
    highlights = list(reply.highlights)
    assert len(highlights) == 2
    assert highlights[0].score >= highlights[1].score
    assert highlights[0].end_seconds <= highlights[1].start_seconds or (
        highlights[1].end_seconds <= highlights[0].start_seconds
    )  # never overlapping
    for h in highlights:
        assert h.clip_mime_type == "video/mp4"
        assert h.reason and h.text
        data = await read_clip(api, h.name)
        assert len(data) == h.clip_size_bytes
        seconds, has_video = decoded_seconds(data)
        assert has_video
        assert abs(seconds - (h.end_seconds - h.start_seconds)) <= 0.5
        cues = srt_cues(h.captions_srt)
        assert cues, h.captions_srt
        assert cues[0][0] < 1.0  # on the clip's own clock
        assert all(0 <= a < b <= (h.end_seconds - h.start_seconds) + 0.05 for a, b in cues)
        # Resuming from an offset gives exactly the rest of the bytes.
        assert await read_clip(api, h.name, offset=len(data) // 2) == data[len(data) // 2 :]
        # A browser reads the same bytes over gRPC-Web, resuming the same way.
        half = len(data) // 2
        assert await read_clip_web(server.web_address, api, h.name, offset=half) == data[half:]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read_clip(api, highlights[0].name, offset=highlights[0].clip_size_bytes + 1)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE

    # Summaries in every format and chapters, from the ANALYZE stage.
    transcript = await api.transcript(job.name)
    for fmt in (tpb.SUMMARY_FORMAT_SHORT, tpb.SUMMARY_FORMAT_BULLETS, tpb.SUMMARY_FORMAT_DETAILED):
        summary = await api.transcripts.GetSummary(
            tpb.GetSummaryRequest(name=job.name, format=fmt), metadata=api.metadata, timeout=30
        )
        assert summary.text and summary.provider == "local"
        # Extractive: every summary sentence is a sentence of the transcript.
        first = summary.bullets[0] if summary.bullets else summary.text.split(". ")[0]
        assert first.strip(" .-") in transcript.text
    assert len(summary.text) > 0
    chapters = (
        await api.transcripts.ListChapters(
            tpb.ListChaptersRequest(name=job.name), metadata=api.metadata, timeout=30
        )
    ).chapters
    assert chapters and all(c.title for c in chapters)
    starts = [c.start_seconds for c in chapters]
    assert starts == sorted(starts)
    assert all(
        c.start_seconds < c.end_seconds <= transcript.duration_seconds + 0.5 for c in chapters
    )

    # The job's cost: audio minutes priced once, CPU seconds per stage.
    today = datetime.now(UTC).date().isoformat()
    report = await api.jobs.GetCostReport(
        job_service_pb2.GetCostReportRequest(start_date=today, end_date=today),
        metadata=api.metadata,
        timeout=30,
    )
    assert [d.date for d in report.days] == [today]
    day = report.days[0]
    assert day.audio_minutes == pytest.approx(transcript.duration_seconds / 60, rel=0.05)
    assert day.cpu_seconds > 0
    assert day.cost_usd > day.audio_minutes * 0.006 * 0.99
    assert report.total_cost_usd == pytest.approx(day.cost_usd)


async def test_child_job_rederives_without_transcribing(api: Api) -> None:
    parent = await api.run(LECTURE)
    assert parent.state == job_pb2.JOB_STATE_SUCCEEDED
    request = job_service_pb2.CreateJobRequest(
        request_id=str(uuid.uuid4()),
        parent=parent.name,
        options=job_pb2.JobOptions(extra_stages=[job_pb2.STAGE_RENDER_CLIPS], highlight_count=1),
    )
    created = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    assert created.parent == parent.name and created.name != parent.name
    events = await api.watch(created.name)
    final = events[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    stages = {e.stage for e in events}
    # Its own progress, and never a transcription.
    assert job_pb2.STAGE_RENDER_CLIPS in stages
    assert not stages & {job_pb2.STAGE_EXTRACT_AUDIO, job_pb2.STAGE_TRANSCRIBE}
    assert [e.seq for e in events if e.seq] == sorted(e.seq for e in events if e.seq)
    original = await api.transcript(parent.name)
    copied = await api.transcript(created.name)
    assert [s.text for s in copied.segments] == [s.text for s in original.segments]

    # Audio-only media gives audio clips, not an error.
    highlights = (
        await api.transcripts.ListHighlights(
            tpb.ListHighlightsRequest(name=created.name), metadata=api.metadata, timeout=30
        )
    ).highlights
    assert len(highlights) == 1 and highlights[0].clip_mime_type.startswith("audio/")
    seconds, has_video = decoded_seconds(await read_clip(api, highlights[0].name))
    assert not has_video
    assert abs(seconds - (highlights[0].end_seconds - highlights[0].start_seconds)) <= 0.5

    # The parent got no clip: ReadClip says how to get one.
    parent_highlights = (
        await api.transcripts.ListHighlights(
            tpb.ListHighlightsRequest(name=parent.name), metadata=api.metadata, timeout=30
        )
    ).highlights
    assert parent_highlights and parent_highlights[0].clip_size_bytes == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read_clip(api, parent_highlights[0].name)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(err.value)["ErrorInfo"].reason == "CLIP_NOT_RENDERED"

    # Deleting the parent deletes the child and its clip files.
    await api.jobs.DeleteJob(
        job_service_pb2.DeleteJobRequest(name=parent.name), metadata=api.metadata, timeout=30
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.get(created.name)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_empty_transcript_gives_empty_results(api: Api, tmp_path: Path) -> None:
    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 3, dtype=np.float32))
    job = await api.run(silence)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    summary = await api.transcripts.GetSummary(
        tpb.GetSummaryRequest(name=job.name), metadata=api.metadata, timeout=30
    )
    assert summary.text == "" and not summary.bullets
    chapters = await api.transcripts.ListChapters(
        tpb.ListChaptersRequest(name=job.name), metadata=api.metadata, timeout=30
    )
    assert not chapters.chapters
    highlights = await api.transcripts.ListHighlights(
        tpb.ListHighlightsRequest(name=job.name), metadata=api.metadata, timeout=30
    )
    assert not highlights.highlights


async def test_questions_cite_timestamped_segments(api: Api, other_api: Api) -> None:
    ocean = await api.run(MEDIA_DIR / "ocean.ogg")
    volcano = await api.run(MEDIA_DIR / "volcano.ogg")
    assert ocean.state == volcano.state == job_pb2.JOB_STATE_SUCCEEDED

    async def ask(who: Api, question: str, name: str = "") -> tpb.AskQuestionResponse:
        return await who.transcripts.AskQuestion(
            tpb.AskQuestionRequest(question=question, name=name), metadata=who.metadata, timeout=60
        )

    reply = await ask(api, "what does an eruption throw into the sky")
    assert reply.provider == "local" and reply.answer
    assert reply.citations[0].job == volcano.name
    assert "ash" in reply.citations[0].text.lower()
    assert reply.citations[0].start_seconds < reply.citations[0].end_seconds
    # The same question again comes from the cache, identical.
    assert await ask(api, "what does an eruption throw into the sky") == reply

    scoped = await ask(api, "what does an eruption throw into the sky", ocean.name)
    assert {c.job for c in scoped.citations} <= {ocean.name}

    # Another user's library is never searched.
    theirs = await ask(other_api, "what does an eruption throw into the sky")
    assert not theirs.citations
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ask(other_api, "what is deep water like", ocean.name)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("options", "code", "reason"),
    [
        ({"translate_to": "xx"}, grpc.StatusCode.INVALID_ARGUMENT, None),
        ({"translate_to": "not a tag"}, grpc.StatusCode.INVALID_ARGUMENT, None),
        ({"translate_to": "fr"}, grpc.StatusCode.FAILED_PRECONDITION, "TRANSLATION_UNAVAILABLE"),
        ({"extra_stages": [job_pb2.STAGE_TRANSCRIBE]}, grpc.StatusCode.INVALID_ARGUMENT, None),
        ({"highlight_count": 500}, grpc.StatusCode.INVALID_ARGUMENT, None),
    ],
)
async def test_bad_derive_options(
    api: Api, options: dict[str, object], code: grpc.StatusCode, reason: str | None
) -> None:
    media = (await api.upload(MEDIA_DIR / "ocean.ogg")).name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create(media, **options)
    assert err.value.code() == code
    if reason:
        assert error_details(err.value)["ErrorInfo"].reason == reason


async def test_bad_analysis_requests(api: Api, other_api: Api) -> None:
    job = await api.run(MEDIA_DIR / "ocean.ogg")

    async def code_of(coro: object) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await coro  # type: ignore[misc]
        return err.value.code()

    md = api.metadata
    assert (
        await code_of(
            api.transcripts.GetSummary(tpb.GetSummaryRequest(name=job.name, format=99), metadata=md)
        )  # type: ignore[arg-type]
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(
            api.transcripts.AskQuestion(tpb.AskQuestionRequest(question="  "), metadata=md)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(read_clip(api, job.name + "/highlights/x"))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await code_of(read_clip(api, job.name + "/highlights/7")) == grpc.StatusCode.NOT_FOUND
    # Someone else's job is not found, whatever is asked of it.
    assert (
        await code_of(
            other_api.transcripts.GetSummary(
                tpb.GetSummaryRequest(name=job.name), metadata=other_api.metadata
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code_of(child(other_api, job.name, extra_stages=[job_pb2.STAGE_ANALYZE]))
        == grpc.StatusCode.NOT_FOUND
    )
    # A child must ask for something.
    assert await code_of(child(api, job.name)) == grpc.StatusCode.INVALID_ARGUMENT
    # A translation nobody made.
    assert (
        await code_of(
            api.transcripts.GetTranscript(
                tpb.GetTranscriptRequest(name=job.name, translation_language="fr"), metadata=md
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    # A bad cost period.
    assert (
        await code_of(
            api.jobs.GetCostReport(
                job_service_pb2.GetCostReportRequest(start_date="2026-13-01"), metadata=md
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(
            api.jobs.GetCostReport(
                job_service_pb2.GetCostReportRequest(
                    start_date="2026-02-01", end_date="2026-01-01"
                ),
                metadata=md,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_search_hits_unaffected_by_child_jobs(api: Api) -> None:
    """A child job reuses the transcript without indexing it twice."""
    parent = await api.run(MEDIA_DIR / "volcano.ogg")
    await child(api, parent.name, extra_stages=[job_pb2.STAGE_ANALYZE])
    reply = await api.search.Search(
        search_service_pb2.SearchRequest(
            query="molten rock", mode=search_service_pb2.SEARCH_MODE_KEYWORD
        ),
        metadata=api.metadata,
        timeout=30,
    )
    assert {h.job for h in reply.hits} == {parent.name}
