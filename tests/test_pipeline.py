"""Media in, transcript out, through the real server, broker, worker and Whisper."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np

from reelscribe import speech
from reelscribe.v1 import job_pb2, job_service_pb2, transcript_service_pb2
from tests.support.api import TERMINAL, Api
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav, speech_samples, write_video, write_wav


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def test_upload_watch_and_read_transcript(api: Api) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    assert media.name.startswith("media/") and media.size_bytes > 0
    job = await api.create(media.name)
    assert job.state == job_pb2.JOB_STATE_QUEUED and job.name.startswith("jobs/")

    events = await api.watch(job.name)
    assert events[0].kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT
    logged = [e for e in events if e.seq]
    # The log is gap-free from 1, every event is self-sufficient, and the stream
    # ends with exactly one terminal event.
    assert [e.seq for e in logged] == list(range(1, len(logged) + 1))
    assert all(e.job.name == job.name for e in logged)
    assert logged[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert sum(e.job.state in TERMINAL for e in logged) == 1
    stages = {e.job.stage for e in logged}
    assert {job_pb2.STAGE_EXTRACT_AUDIO, job_pb2.STAGE_TRANSCRIBE} <= stages
    progress = [e.job.progress for e in logged]
    assert progress == sorted(progress) and progress[-1] == 1.0

    transcript = await api.transcript(job.name)
    spoken = _words((MEDIA_DIR / "ocean.txt").read_text())
    heard = _words(transcript.text)
    assert len(spoken & heard) >= 0.7 * len(spoken), (spoken - heard, transcript.text)
    assert transcript.language == "en"
    assert 5.0 < transcript.duration_seconds < 15.0
    previous_end = 0.0
    for segment in transcript.segments:
        assert segment.words, "word timings are on by default"
        assert previous_end - 0.01 <= segment.start_seconds < segment.end_seconds
        for word in segment.words:
            # Every word has a real duration (Whisper gives some none).
            assert segment.start_seconds - 0.01 <= word.start_seconds < word.end_seconds, word
            assert word.end_seconds <= segment.end_seconds + 1e-6
            assert word.end_seconds <= transcript.duration_seconds + 0.5
        previous_end = segment.end_seconds

    final = await api.get(job.name)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED
    assert final.attempts == 1 and final.HasField("end_time")
    assert abs(final.media_duration.seconds - transcript.duration_seconds) <= 1


async def test_video_container_is_decoded(api: Api, tmp_path: Path) -> None:
    speech = speech_samples(MEDIA_DIR / "volcano.ogg")
    video = write_video(tmp_path / "talk.mp4", len(speech) / 16000, speech)
    job = await api.run(video)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    heard = _words((await api.transcript(job.name)).text)
    spoken = _words((MEDIA_DIR / "volcano.txt").read_text())
    assert len(spoken & heard) >= 0.7 * len(spoken), spoken - heard
    assert {"rock", "crust", "eruption", "ash"} <= heard, heard


async def test_every_word_has_a_duration(api: Api, tmp_path: Path) -> None:
    # Said twice, the lecture's "Carbon" (12.78 s) came back with start == end.
    job = await api.run(lecture_wav(tmp_path / "lecture.wav", 2))
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) > 50
    short = [w for w in words if w.end_seconds - w.start_seconds < speech.MIN_WORD_S - 1e-6]
    assert not short, short
    assert all(a.end_seconds <= b.start_seconds + 1e-6 for a, b in itertools.pairwise(words))
    for segment in transcript.segments:
        assert segment.start_seconds <= segment.words[0].start_seconds + 1e-6
        assert segment.words[-1].end_seconds <= segment.end_seconds + 1e-6


async def test_exports_text_and_json(api: Api) -> None:
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    txt = await api.transcripts.ExportTranscript(
        transcript_service_pb2.ExportTranscriptRequest(
            name=job.name + "/transcript", format=transcript_service_pb2.EXPORT_FORMAT_TXT
        ),
        metadata=api.metadata,
    )
    assert txt.mime_type.startswith("text/plain") and "ocean" in txt.content.lower()
    segments = (await api.transcript(job.name)).segments
    assert txt.content == "".join(f"{s.text}\n" for s in segments)
    js = await api.transcripts.ExportTranscript(
        transcript_service_pb2.ExportTranscriptRequest(
            name=job.name, format=transcript_service_pb2.EXPORT_FORMAT_JSON
        ),
        metadata=api.metadata,
    )
    doc = json.loads(js.content)
    assert doc["name"] == job.name + "/transcript"
    assert doc["segments"][0]["words"][0]["text"].strip()


async def test_captions_export(api: Api) -> None:
    job = await api.run(MEDIA_DIR / "volcano.ogg")
    request = transcript_service_pb2.ExportTranscriptRequest(
        name=job.name, format=transcript_service_pb2.EXPORT_FORMAT_SRT
    )
    srt = (await api.transcripts.ExportTranscript(request, metadata=api.metadata)).content
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    assert blocks[0][0] == "1" and " --> " in blocks[0][1]
    assert all(len(line) <= 42 for b in blocks for line in b[2:])
    assert "molten" in srt.lower()
    request.format = transcript_service_pb2.EXPORT_FORMAT_VTT
    request.caption_options.max_chars_per_line = 16
    request.caption_options.max_lines = 1
    vtt = await api.transcripts.ExportTranscript(request, metadata=api.metadata)
    assert vtt.mime_type == "text/vtt" and vtt.content.startswith("WEBVTT\n\n")
    cues = [c.splitlines() for c in vtt.content.split("\n\n")[1:] if c.strip()]
    assert all(len(c) == 2 and len(c[1]) <= 16 for c in cues), cues


async def test_same_media_is_a_cache_hit(api: Api, server) -> None:  # type: ignore[no-untyped-def]
    media = await api.upload(MEDIA_DIR / "volcano.ogg")
    first = await api.run(media.name)
    assert first.state == job_pb2.JOB_STATE_SUCCEEDED and not first.cache_hit
    again = await api.create(media.name)
    # Answered by CreateJob itself: no worker touched it.
    assert again.state == job_pb2.JOB_STATE_SUCCEEDED and again.cache_hit, again
    assert again.attempts == 0 and "cache hit" in again.message
    assert [s.text for s in (await api.transcript(again.name)).segments] == [
        s.text for s in (await api.transcript(first.name)).segments
    ]
    # An identical upload (same content) hits the cache too.
    other_upload = await api.upload(MEDIA_DIR / "volcano.ogg")
    assert (await api.create(other_upload.name)).cache_hit
    # skip_cache forces a fresh run.
    fresh = await api.run(media.name, skip_cache=True)
    assert fresh.state == job_pb2.JOB_STATE_SUCCEEDED and not fresh.cache_hit
    assert fresh.attempts == 1


async def test_transcripts_are_cached_in_redis_and_invalidated(api: Api, server) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from reelscribe.db.transcripts import redis_key

    job = await api.run(MEDIA_DIR / "ocean.ogg", skip_cache=True)
    key = redis_key(job.owner, uuid.UUID(job.name.split("/")[1]))
    redis = server.deps.redis
    assert await redis.get(key) is None
    first = await api.transcript(job.name)
    assert await redis.ttl(key) > 29 * 24 * 3600
    assert (await api.transcript(job.name)) == first
    await api.jobs.DeleteJob(job_service_pb2.DeleteJobRequest(name=job.name), metadata=api.metadata)
    assert await redis.get(key) is None


async def test_silence_finishes_fast_with_an_empty_transcript(api: Api, tmp_path: Path) -> None:
    hour = write_wav(tmp_path / "silence.wav", np.zeros(8000 * 3600, dtype=np.float32), 8000)
    job = await api.run(hour)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert transcript.segments == [] and transcript.text == ""
    assert 3599 < transcript.duration_seconds < 3601
    # No chunk was ever sent to the model.
    events = await api.watch(job.name)
    assert not [e for e in events if e.job.stage == job_pb2.STAGE_TRANSCRIBE]
