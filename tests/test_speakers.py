"""Speakers (STAGE_DIARIZE) on the real stack: espeak-ng conversations whose
turns are known exactly, transcribed by tiny.en and labelled by the worker."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import av
import grpc
import numpy as np
import pytest

from bench.speakers.conversation import RATE, Conversation, build, stereo
from bench.speakers.der import der
from reelscribe import captions
from reelscribe.options import JobOptions
from reelscribe.v1 import job_pb2, search_service_pb2
from reelscribe.v1 import transcript_service_pb2 as tpb
from tests.support.api import Api, error_details
from tests.support.mediagen import write_wav

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED


def agreement(conversation: Conversation, spans: Sequence[tuple[float, float, str]]) -> float:
    """Share of the true speech time covered by labelled spans (start, end,
    speaker id) whose label names the true speaker, under the best mapping of
    labels to speakers."""
    labels = sorted({s for _, _, s in spans if s})
    truth = sorted({w for _, _, w in conversation.turns})

    def overlap(a: float, b: float, s: float, e: float) -> float:
        return max(0.0, min(b, e) - max(a, s))

    covered = sum(
        overlap(a, b, s, e) for a, b, _ in conversation.turns for s, e, label in spans if label
    )
    best = 0.0
    padded = truth + [-1] * max(0, len(labels) - len(truth))
    for perm in itertools.permutations(padded, len(labels)):
        mapping = dict(zip(labels, perm, strict=True))
        right = sum(
            overlap(a, b, s, e)
            for a, b, w in conversation.turns
            for s, e, label in spans
            if label and mapping[label] == w
        )
        best = max(best, right / covered)
    return best


def coverage(conversation: Conversation, spans: Sequence[tuple[float, float, str]]) -> float:
    """Share of the true speech time inside labelled spans."""
    total = sum(b - a for a, b, _ in conversation.turns)
    return (
        sum(
            max(0.0, min(b, e) - max(a, s))
            for a, b, _ in conversation.turns
            for s, e, label in spans
            if label
        )
        / total
    )


@pytest.fixture(scope="module")
def talk() -> Conversation:
    """About 36 s: two voices, eight turns."""
    return build(2, 8)


@pytest.fixture(scope="module")
def talk_wav(talk: Conversation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("speakers") / "talk.wav", talk.samples)


def _stereo_wav(path: Path, channels: np.ndarray) -> Path:
    """16-bit PCM WAV with two channels, (2, n) float samples."""
    pcm = (np.clip(channels.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


async def _export(api: Api, name: str, fmt: int) -> str:
    reply = await api.transcripts.ExportTranscript(
        tpb.ExportTranscriptRequest(name=name, format=fmt), metadata=api.metadata, timeout=30
    )
    return reply.content


async def test_two_people_are_told_apart_named_and_renamed(
    api: Api, other_api: Api, talk: Conversation, talk_wav: Path
) -> None:
    job = await api.run(talk_wav, diarize=True)
    assert job.state == SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert [s.display_name for s in transcript.speakers] == ["Speaker 1", "Speaker 2"]
    spoken = sum(s.speaking_seconds for s in transcript.speakers)
    assert spoken == pytest.approx(sum(b - a for a, b, _ in talk.turns), rel=0.15)
    segments = [(s.start_seconds, s.end_seconds, s.speaker_id) for s in transcript.segments]
    assert coverage(talk, segments) >= 0.8
    assert agreement(talk, segments) >= 0.9
    words = [
        (w.start_seconds, w.end_seconds, w.speaker_id) for s in transcript.segments for w in s.words
    ]
    assert agreement(talk, words) >= 0.9
    for s in transcript.segments:
        assert s.speaker == f"Speaker {s.speaker_id}"

    vtt = await _export(api, job.name, tpb.EXPORT_FORMAT_VTT)
    assert "<v Speaker 1>" in vtt and "<v Speaker 2>" in vtt
    srt = await _export(api, job.name, tpb.EXPORT_FORMAT_SRT)
    assert "\nSpeaker 1: " in srt and "\nSpeaker 2: " in srt
    assert all(len(line) <= captions.DEFAULT_MAX_CHARS_PER_LINE for line in srt.splitlines())
    txt = await _export(api, job.name, tpb.EXPORT_FORMAT_TXT)
    assert all(line.startswith(("Speaker 1: ", "Speaker 2: ")) for line in txt.splitlines())

    # Naming a speaker shows at once, everywhere, without recomputing.
    first = transcript.speakers[0].name
    renamed = await api.transcripts.RenameSpeaker(
        tpb.RenameSpeakerRequest(name=first, display_name="Dr Lee"), metadata=api.metadata
    )
    assert renamed.speaker.display_name == "Dr Lee"
    again = await api.transcript(job.name)
    assert [s.display_name for s in again.speakers] == ["Dr Lee", "Speaker 2"]
    assert {s.speaker for s in again.segments if s.speaker_id == "1"} == {"Dr Lee"}
    assert "<v Dr Lee>" in await _export(api, job.name, tpb.EXPORT_FORMAT_VTT)
    assert "Dr Lee: " in await _export(api, job.name, tpb.EXPORT_FORMAT_TXT)
    hits = await api.search.Search(
        search_service_pb2.SearchRequest(query="library budget garden", jobs=[job.name]),
        metadata=api.metadata,
    )
    assert hits.hits and {h.speaker for h in hits.hits} <= {"Dr Lee", "Speaker 2"}
    assert any(h.speaker for h in hits.hits)

    highlights = await api.transcripts.ListHighlights(
        tpb.ListHighlightsRequest(name=job.name), metadata=api.metadata, timeout=120
    )
    assert highlights.highlights
    assert all(h.speaker in ("Dr Lee", "Speaker 2") for h in highlights.highlights)
    answer = await api.transcripts.AskQuestion(
        tpb.AskQuestionRequest(name=job.name, question="When will the garden open?"),
        metadata=api.metadata,
        timeout=120,
    )
    assert all(c.speaker in ("Dr Lee", "Speaker 2") for c in answer.citations)

    # Someone else's speaker does not exist for them; bad names are refused.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await other_api.transcripts.RenameSpeaker(
            tpb.RenameSpeakerRequest(name=first, display_name="Mallory"),
            metadata=other_api.metadata,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for bad in ("x" * 101, "a\nb"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.transcripts.RenameSpeaker(
                tpb.RenameSpeakerRequest(name=first, display_name=bad), metadata=api.metadata
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.transcripts.RenameSpeaker(
            tpb.RenameSpeakerRequest(name=f"{job.name}/speakers/3", display_name="Nobody"),
            metadata=api.metadata,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # An empty name restores the default.
    await api.transcripts.RenameSpeaker(
        tpb.RenameSpeakerRequest(name=first, display_name=""), metadata=api.metadata
    )
    assert (await api.transcript(job.name)).speakers[0].display_name == "Speaker 1"

    # The same recording again with a given count: the transcript is reused
    # (cache hit) and only the speakers are found, from the media.
    counted = await api.run(talk_wav, speaker_count=2)
    assert counted.state == SUCCEEDED and counted.cache_hit, counted.error
    labelled = await api.transcript(counted.name)
    assert len(labelled.speakers) == 2
    spans = [(s.start_seconds, s.end_seconds, s.speaker_id) for s in labelled.segments]
    assert agreement(talk, spans) >= 0.9


async def test_stereo_channels_tell_apart_people_with_the_same_voice(
    api: Api, tmp_path: Path
) -> None:
    # One voice for both people: only the channels can tell them apart.
    same_voice = build(2, 4, voices=(("en+m3", 35), ("en+m3", 35)), offset=4)
    path = _stereo_wav(tmp_path / "stereo.wav", stereo(same_voice))
    job = await api.run(path, diarize=True)
    assert job.state == SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert len(transcript.speakers) == 2
    spans = [(s.start_seconds, s.end_seconds, s.speaker_id) for s in transcript.segments]
    assert agreement(same_voice, spans) >= 0.9


async def test_silence_has_no_speakers(api: Api, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "silence.wav", np.zeros(3 * RATE, np.float32))
    job = await api.run(path, diarize=True)
    assert job.state == SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert not transcript.speakers and not transcript.segments


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"speaker_count": 21}, "options.speaker_count"),
        ({"max_speakers": -1}, "options.max_speakers"),
        ({"speaker_count": 3, "max_speakers": 2}, "options.speaker_count"),
    ],
)
async def test_bad_speaker_options_are_refused(
    api: Api, talk_wav: Path, options: dict[str, int], field: str
) -> None:
    media = await api.upload(talk_wav)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create(media.name, **options)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details(err.value)["BadRequest"]
    assert [v.field for v in bad.field_violations] == [field]  # type: ignore[attr-defined]


def test_speaker_options_survive_the_column_and_the_wire() -> None:
    pb = job_pb2.JobOptions(diarize=True, speaker_count=3, max_speakers=5)
    options = JobOptions.from_pb(pb, default_model="tiny.en")
    assert JobOptions.from_json(options.to_json()) == options
    assert options.to_pb().speaker_count == 3 and options.to_pb().max_speakers == 5
    assert [s.value for s in options.requested_stages()] == ["DIARIZE"]
    # A count alone asks for speakers too; detection defaults to 8 at most.
    counted = JobOptions.from_pb(job_pb2.JobOptions(speaker_count=2))
    assert [s.value for s in counted.requested_stages()] == ["DIARIZE"]
    assert counted.speaker_limit == 8
    # DIARIZE runs before the stages that read speakers.
    both = JobOptions.from_pb(job_pb2.JobOptions(diarize=True, highlight_count=2))
    assert [s.value for s in both.requested_stages()] == ["DIARIZE", "ANALYZE", "HIGHLIGHTS"]


def test_der_counts_misses_false_alarms_and_confusion_outside_the_collar() -> None:
    ref = [(0.0, 10.0, 0), (10.0, 20.0, 1)]
    assert der(ref, ref).rate == 0.0
    # Labels are mapped: swapped names are no error.
    assert der(ref, [(0.0, 10.0, 7), (10.0, 20.0, 3)]).rate == 0.0
    # 0.25 s either side of the boundaries at 0, 10 and 20 is not scored: 19 s are.
    one = der(ref, [(0.0, 20.0, 0)])
    assert one.reference_s == pytest.approx(19.0) and one.confusion_s == pytest.approx(9.5)
    assert one.rate == pytest.approx(0.5)
    missed = der(ref, [(0.0, 10.0, 0)])
    assert missed.missed_s == pytest.approx(9.5) and missed.rate == pytest.approx(0.5)
    both = der(ref, [(0.0, 20.0, 0), (0.0, 20.0, 1)])
    assert both.false_alarm_s == pytest.approx(19.0) and both.confusion_s == 0.0


def test_captions_never_mix_speakers_and_srt_prefixes_fit_the_line() -> None:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    segments = [
        tpb.Segment(
            start_seconds=start,
            end_seconds=start + 3,
            text=" ".join(words),
            speaker=name,
            speaker_id=sid,
            words=[
                tpb.Word(
                    start_seconds=start + i * 0.3, end_seconds=start + i * 0.3 + 0.25, text=f" {w}"
                )
                for i, w in enumerate(words)
            ],
        )
        for start, name, sid in ((0.0, "Dr Lee", "1"), (3.0, "Speaker 2", "2"))
    ]
    lay = captions.CaptionLayout(max_chars_per_line=20, max_lines=2)
    caps = captions.layout(segments, lay, speaker_prefix=True)
    assert caps[0].speaker == "Dr Lee" and caps[-1].speaker == "Speaker 2"
    # The second speaker's first word (at 3.0 s) starts a caption of its own.
    assert all(c.end_s <= 3.0 for c in caps if c.speaker == "Dr Lee")
    assert sum(" ".join(c.lines).count("ten") for c in caps if c.speaker == "Dr Lee") == 1
    assert all(len(line) <= 20 for c in caps for line in c.lines)
    assert all(c.lines[0].startswith(f"{c.speaker}: ") for c in caps)
    assert captions.to_vtt(captions.layout(segments, lay)).count("<v Dr Lee>") >= 1
