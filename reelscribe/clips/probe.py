"""What a clip is cut from: the input probed with PyAV (kind, codecs, duration, the
keyframe near the start), under the same demuxer and protocol allow-lists as
`reelscribe.media`, before FFmpeg is given it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from reelscribe.clips.plan import ClipError, MediaKind
from reelscribe.media import ALLOWED_AUDIO_CODECS, ALLOWED_DEMUXERS

#: A start this close to a keyframe is cut by stream copy, starting on that keyframe.
KEYFRAME_TOLERANCE_S = 0.1

#: Video codecs (descriptor names) we let FFmpeg decode. Like the audio list in
#: `reelscribe.media`, this keeps rarely used, rarely fuzzed decoders out of reach.
ALLOWED_VIDEO_CODECS = frozenset(
    {
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "mpeg4",
        "mpeg1video",
        "mpeg2video",
        "mjpeg",
        "theora",
        "h263",
        "flv1",
        "vc1",
        "wmv1",
        "wmv2",
        "wmv3",
        "prores",
    }
)

#: PyAV open options; these mirror `reelscribe.media` (whose opener is private).
_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "probesize": str(50 * 1024 * 1024),
    "analyzeduration": str(30 * 1_000_000),
}


@dataclass(frozen=True)
class Source:
    """What a probe of the input found."""

    kind: MediaKind
    duration_s: float
    video_codec: str
    audio_codec: str
    #: The keyframe within tolerance of the requested start (media clock), if any.
    keyframe_s: float | None


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[av.container.InputContainer]:
    if not path.is_file():
        raise ClipError(f"the media file {path.name!r} does not exist", reason="MEDIA_MISSING")
    if path.stat().st_size == 0:
        raise ClipError(f"the media file {path.name!r} is empty", reason="NOT_MEDIA")
    try:
        container = av.open(
            str(path), mode="r", metadata_errors="ignore", options=dict(_OPEN_OPTIONS)
        )
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ClipError(
            f"{path.name!r} is not a media file FFmpeg can read", reason="NOT_MEDIA"
        ) from exc
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    # Cover art in audio files is a one-frame "video" stream; it is not a video.
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _duration_s(container: av.container.InputContainer) -> float:
    if container.duration is not None:
        return container.duration / av.time_base
    longest = 0.0
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            longest = max(longest, float(stream.duration * stream.time_base))
    return longest


def media_kind(path: Path) -> MediaKind:
    """ "video" if `path` has a real video stream (not cover art), else "audio"."""
    with _open_input(path) as container:
        return "video" if _video_stream(container) is not None else "audio"


def _keyframe_near(
    container: av.container.InputContainer, stream: av.VideoStream, t: float
) -> float | None:
    """The keyframe closest to `t` (media clock) within the tolerance, or None."""
    if stream.time_base is None:
        return None
    tb = stream.time_base
    # The media clock (and ffmpeg's -ss) counts from the file's start time.
    origin = (container.start_time or 0) / av.time_base
    lo = max(0.0, t - KEYFRAME_TOLERANCE_S)
    hi = t + KEYFRAME_TOLERANCE_S
    try:
        # Seeking backward lands on the keyframe at or before `lo`, so only a
        # short stretch of packets is read instead of the whole file.
        container.seek(int((lo + origin) / tb), backward=True, any_frame=False, stream=stream)
    except av.error.FFmpegError:
        return None
    found: list[float] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            # Packets come in decode order: once the decode time is past the
            # window, no keyframe inside it (pts >= dts) can follow.
            dts = packet.dts if packet.dts is not None else packet.pts
            if float(dts * tb) - origin > hi:
                break
            pts = float(packet.pts * tb) - origin
            if packet.is_keyframe and abs(pts - t) <= KEYFRAME_TOLERANCE_S:
                found.append(pts)
    except av.error.FFmpegError:
        pass  # Damaged data past the window's start: use what was read.
    return min(found, key=lambda k: abs(k - t)) if found else None


def probe_source(path: Path, start_s: float) -> Source:
    """Kind, codecs and duration of `path`, and its keyframe near `start_s` if any."""
    with _open_input(path) as container:
        video = _video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise ClipError(
                f"{path.name!r} has neither a video nor an audio stream", reason="NO_STREAMS"
            )
        audio_codec = ""
        if audio is not None:
            if audio.codec_context.name not in ALLOWED_AUDIO_CODECS:
                raise ClipError(
                    f"audio codec {audio.codec_context.name!r} is not supported",
                    reason="UNSUPPORTED_CODEC",
                )
            audio_codec = audio.codec_context.codec.canonical_name
        video_codec = ""
        keyframe_s = None
        if video is not None:
            video_codec = video.codec_context.codec.canonical_name
            if video_codec not in ALLOWED_VIDEO_CODECS:
                raise ClipError(
                    f"video codec {video_codec!r} is not supported", reason="UNSUPPORTED_CODEC"
                )
            keyframe_s = _keyframe_near(container, video, start_s)
        return Source(
            kind="video" if video is not None else "audio",
            duration_s=_duration_s(container),
            video_codec=video_codec,
            audio_codec=audio_codec,
            keyframe_s=keyframe_s,
        )


def probe_output(path: Path) -> float:
    """Duration of a written clip; ClipError if it holds nothing playable."""
    try:
        with _open_input(path) as container:
            duration = _duration_s(container)
    except ClipError as exc:
        raise ClipError("ffmpeg wrote no playable clip", reason="EMPTY_OUTPUT") from exc
    if duration <= 0:
        raise ClipError("ffmpeg wrote an empty clip", reason="EMPTY_OUTPUT")
    return duration
