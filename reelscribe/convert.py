"""Database rows to protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.protobuf import duration_pb2, timestamp_pb2

from reelscribe import names
from reelscribe.options import JobOptions
from reelscribe.states import JobState, Stage
from reelscribe.v1 import job_pb2, transcript_service_pb2

if TYPE_CHECKING:
    from reelscribe.db.speakers import SpeakerRow

Row = Mapping[str, Any]


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp, or None for a missing time."""
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def job_to_pb(row: Row) -> job_pb2.Job:
    """A `Job` message from a `jobs` row."""
    job = job_pb2.Job(
        name=names.job_name(row["id"]),
        options=JobOptions.from_json(row["options"]).to_pb(),
        state=JobState(row["state"]).to_pb(),
        stage=Stage(row["stage"]).to_pb(),
        progress=float(row["progress"]),
        message=row["message"],
        last_event_seq=int(row["last_event_seq"]),
        owner=row["owner"],
        cache_hit=bool(row["cache_hit"]),
        attempts=int(row["attempts"]),
        labels=dict(row["labels"] or {}),
    )
    if row["media_id"] is not None:
        job.media = names.media_name(row["media_id"])
    elif row["source_uri"]:
        job.source_uri = row["source_uri"]
    if row["parent_id"] is not None:
        job.parent = names.job_name(row["parent_id"])
    if row["error_reason"]:
        job.error.CopyFrom(
            job_pb2.JobError(
                reason=row["error_reason"],
                message=row["error_message"] or "",
                stage=Stage(row["error_stage"] or row["stage"]).to_pb(),
            )
        )
    for field, column in (
        ("create_time", "create_time"),
        ("update_time", "update_time"),
        ("start_time", "start_time"),
        ("end_time", "end_time"),
    ):
        ts = timestamp(row[column])
        if ts is not None:
            getattr(job, field).CopyFrom(ts)
    if row["media_duration_s"] is not None:
        job.media_duration.CopyFrom(duration(row["media_duration_s"]))
    for warning in row.get("warnings") or ():
        job.warnings.append(job_pb2.JobWarning(code=warning["code"], message=warning["message"]))
    page = row.get("source_page")
    if page:
        job.source_page.CopyFrom(source_page_to_pb(page))
    return job


def source_page_to_pb(page: Mapping[str, Any]) -> job_pb2.SourcePage:
    """What a web page said about its media (the jobs.source_page JSON) as a message."""
    out = job_pb2.SourcePage(title=page.get("title", ""), uploader=page.get("uploader", ""))
    if page.get("duration_s") is not None:
        out.claimed_duration.CopyFrom(duration(float(page["duration_s"])))
    for chapter in page.get("chapters") or ():
        out.chapters.append(
            job_pb2.PageChapter(
                title=chapter["title"],
                start_offset=duration(float(chapter["start_s"])),
                end_offset=duration(float(chapter["end_s"])),
            )
        )
    return out


def duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration of `seconds`, rounded to the millisecond.

    Durations are measured in samples, so the float carries noise below the
    millisecond (59.9 is 59.899999999...); splitting it unrounded would show
    `59.899999999s`.
    """
    whole, ms = divmod(max(0, round(seconds * 1000)), 1000)
    return duration_pb2.Duration(seconds=whole, nanos=ms * 1_000_000)


def media_to_pb(row: Row) -> job_pb2.Media:
    """A `Media` message from a `media` row."""
    media = job_pb2.Media(
        name=names.media_name(row["id"]),
        filename=row["filename"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
    )
    ts = timestamp(row["create_time"])
    if ts is not None:
        media.create_time.CopyFrom(ts)
    return media


def transcript_to_pb(
    row: Row,
    segments: list[Row],
    words: list[Row] | None,
    speakers: Sequence[SpeakerRow] = (),
) -> transcript_service_pb2.Transcript:
    """A `Transcript` from its row, its segments, (optionally) its words and
    its `speakers` (their current names label segments; without them, no
    speaker fields are set)."""
    by_segment: dict[int, list[Row]] = {}
    for word in words or []:
        by_segment.setdefault(word["segment_idx"], []).append(word)
    transcript = transcript_service_pb2.Transcript(
        name=names.transcript_name(row["job_id"]),
        language=row["language"],
        language_probability=row["language_probability"],
        duration_seconds=row["duration_s"],
        text=row["text"],
        model=row["model"],
        language_assumed=row["language_assumed"],
        languages=[
            transcript_service_pb2.LanguageShare(language=x["language"], share=x["share"])
            for x in row["languages"] or ()
        ],
    )
    ts = timestamp(row["create_time"])
    if ts is not None:
        transcript.create_time.CopyFrom(ts)
    names_by_idx = {sp.idx: sp.display_name for sp in speakers}
    for sp in speakers:
        transcript.speakers.append(
            transcript_service_pb2.Speaker(
                name=names.speaker_name(row["job_id"], sp.idx),
                display_name=sp.display_name,
                speaking_seconds=sp.speaking_s,
            )
        )
    for seg in segments:
        transcript.segments.append(
            transcript_service_pb2.Segment(
                index=seg["idx"],
                start_seconds=seg["start_s"],
                end_seconds=seg["end_s"],
                text=seg["text"],
                confidence=seg["confidence"],
                low_confidence=seg["low_confidence"],
                suspected_hallucination=seg["suspected_hallucination"],
                language=seg["language"],
                language_probability=seg["language_probability"],
                other_language_suspected=seg["other_language_suspected"],
                words=[
                    transcript_service_pb2.Word(
                        start_seconds=w["start_s"],
                        end_seconds=w["end_s"],
                        text=w["text"],
                        probability=w["probability"],
                    )
                    for w in by_segment.get(seg["idx"], [])
                ],
            )
        )
        if names_by_idx:
            _label(transcript.segments[-1], seg, by_segment.get(seg["idx"], []), names_by_idx)
    return transcript


def _label(
    segment: transcript_service_pb2.Segment,
    row: Row,
    words: list[Row],
    names_by_idx: Mapping[int, str],
) -> None:
    """Put the speaker labels of a segment's rows on its message."""
    idx = row.get("speaker_idx")
    if idx is not None and idx in names_by_idx:
        segment.speaker, segment.speaker_id = names_by_idx[idx], str(idx)
    for word, word_row in zip(segment.words, words, strict=True):
        if word_row.get("speaker_idx") is not None:
            word.speaker_id = str(word_row["speaker_idx"])


def highlight_to_pb(row: Row) -> transcript_service_pb2.Highlight:
    """A `Highlight` message from a `highlights` row."""
    return transcript_service_pb2.Highlight(
        name=names.highlight_name(row["job_id"], row["idx"]),
        start_seconds=row["start_s"],
        end_seconds=row["end_s"],
        score=row["score"],
        reason=row["reason"],
        text=row["text"],
        clip_size_bytes=row["clip_size_bytes"],
        clip_mime_type=row["clip_mime_type"],
        captions_srt=row["captions_srt"],
    )
