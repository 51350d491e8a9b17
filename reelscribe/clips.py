"""Highlight clips: cut a span of a recording with FFmpeg, with captions.

A clip is rendered with the `ffmpeg` binary from `imageio-ffmpeg` (PyAV has no
filter graph for libass, and the binary's muxers handle edit lists and
faststart for us). Inputs are probed with PyAV first, under the same demuxer
and protocol allow-lists as `reelscribe.media`, and the binary is given those
allow-lists too, so a crafted file cannot make FFmpeg read anything else.

Two ways to cut:

* **copy** — packets are copied untouched. Fast and lossless, but a video can
  only start on a keyframe, so it is used only when the requested start is
  within `KEYFRAME_TOLERANCE_S` of one (the clip then starts exactly on that
  keyframe) and nothing has to be drawn into the picture.
* **reencode** — H.264 (libx264, veryfast) + AAC; frame-accurate, and needed
  for burned-in captions and the vertical 9:16 crop.

Audio-only media gives an audio clip (burn-in and vertical do not apply).
Captions are rebased onto the clip's own clock and written as an SRT sidecar.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import imageio_ffmpeg

from reelscribe.captions import Caption, to_srt
from reelscribe.media import ALLOWED_AUDIO_CODECS, ALLOWED_DEMUXERS

#: One caption cue: start and end in seconds, and its text.
Cue = tuple[float, float, str]
MediaKind = Literal["video", "audio"]
Method = Literal["copy", "reencode"]

#: A start this close to a keyframe is cut by stream copy, starting on that keyframe.
KEYFRAME_TOLERANCE_S = 0.1
#: Vertical (9:16) output size; both even, as yuv420p needs.
VERTICAL_SIZE = (720, 1280)
#: Default wall-clock limit for one ffmpeg run.
DEFAULT_TIMEOUT_S = 300.0
#: Characters of ffmpeg's stderr kept in a ClipError message.
_STDERR_TAIL = 2000

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
#: Codecs MP4 carries well, so they may be stream-copied into the clip.
_MP4_COPY_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
_MP4_COPY_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3"})

#: PyAV open options; these mirror `reelscribe.media` (whose opener is private).
_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "probesize": str(50 * 1024 * 1024),
    "analyzeduration": str(30 * 1_000_000),
}
#: Where the caption font may live (Debian/Ubuntu fonts-dejavu-core, Fedora, Alpine).
_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
)
_FONT_FILE = "DejaVuSans.ttf"
_FONT_NAME = "DejaVu Sans"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ClipError(Exception):
    """A clip could not be rendered; `message` is meant for people.

    `reason` is machine-readable (INVALID_RANGE, MEDIA_MISSING, NOT_MEDIA,
    UNSUPPORTED_CODEC, NO_STREAMS, NO_CAPTION_FONT, NO_ENCODER, FFMPEG_FAILED,
    TIMEOUT, EMPTY_OUTPUT, INVALID_NAME); `stderr` holds ffmpeg's output tail.
    """

    def __init__(self, message: str, *, reason: str = "CLIP_FAILED", stderr: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.stderr = stderr


@dataclass(frozen=True)
class ClipPlan:
    """What to cut: `start_s`..`end_s` in the original media clock, and how."""

    start_s: float
    end_s: float
    burn_captions: bool = False
    vertical: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ClipError("clip start and end must be finite numbers", reason="INVALID_RANGE")
        if self.start_s < 0:
            raise ClipError(
                f"clip start ({self.start_s:.3f} s) must not be negative", reason="INVALID_RANGE"
            )
        if self.start_s >= self.end_s:
            raise ClipError(
                f"clip start ({self.start_s:.3f} s) must be before its end ({self.end_s:.3f} s)",
                reason="INVALID_RANGE",
            )


@dataclass(frozen=True)
class RenderedClip:
    """A rendered clip and its caption sidecar.

    `start_s` is where the clip really starts in the original media clock (a
    stream copy starts on the keyframe it snapped to) and `duration_s` is
    probed from the written file; `captions_srt` is on the clip's own clock.
    """

    path: Path
    size_bytes: int
    mime_type: str
    duration_s: float
    method: Method
    captions_srt: str
    start_s: float
    captions_path: Path


@dataclass(frozen=True)
class _Source:
    """What a probe of the input found."""

    kind: MediaKind
    duration_s: float
    video_codec: str
    audio_codec: str
    #: The keyframe within tolerance of the requested start (media clock), if any.
    keyframe_s: float | None


# --------------------------------------------------------------------- captions


def rebase_captions(captions: Sequence[Cue], start_s: float, duration_s: float) -> list[Cue]:
    """Captions moved onto a clip's clock: shifted by `start_s`, cut to [0, duration_s].

    Cues that end before the clip or start after it are dropped, as are cues
    with no text; the rest keep their order.
    """
    out: list[Cue] = []
    for cue_start, cue_end, text in captions:
        start = max(0.0, cue_start - start_s)
        end = min(duration_s, cue_end - start_s)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        # Under a millisecond would be a zero-length cue once written as SRT.
        if end - start < 0.001 or not lines:
            continue
        out.append((start, end, "\n".join(lines)))
    return out


def _srt(cues: Sequence[Cue]) -> str:
    return to_srt([Caption(start, end, tuple(text.split("\n"))) for start, end, text in cues])


# ------------------------------------------------------------------------ probe


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


def _probe_source(path: Path, start_s: float) -> _Source:
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
        return _Source(
            kind="video" if video is not None else "audio",
            duration_s=_duration_s(container),
            video_codec=video_codec,
            audio_codec=audio_codec,
            keyframe_s=keyframe_s,
        )


def _probe_output(path: Path) -> float:
    """Duration of a written clip; ClipError if it holds nothing playable."""
    try:
        with _open_input(path) as container:
            duration = _duration_s(container)
    except ClipError as exc:
        raise ClipError("ffmpeg wrote no playable clip", reason="EMPTY_OUTPUT") from exc
    if duration <= 0:
        raise ClipError("ffmpeg wrote an empty clip", reason="EMPTY_OUTPUT")
    return duration


# ----------------------------------------------------------------------- ffmpeg


@functools.cache
def _ffmpeg() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@functools.cache
def _encoders() -> frozenset[str]:
    out = subprocess.run(
        [_ffmpeg(), "-nostdin", "-hide_banner", "-encoders"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    # Lines look like " V....D libx264   libx264 H.264 ..."; the name is column 2.
    return frozenset(parts[1] for line in out.splitlines() if len(parts := line.split()) > 1)


def _h264_encoder() -> str:
    for name in ("libx264", "libopenh264"):
        if name in _encoders():
            return name
    raise ClipError("this ffmpeg build has no H.264 encoder", reason="NO_ENCODER")


def _caption_font_dir() -> Path:
    for directory in _FONT_DIRS:
        if (directory / _FONT_FILE).is_file():
            return directory
    raise ClipError(
        "burning captions needs the DejaVu Sans font (Debian package fonts-dejavu-core)",
        reason="NO_CAPTION_FONT",
    )


def _filter_value(value: str) -> str:
    """`value` escaped for a filter option inside a filtergraph.

    FFmpeg unescapes twice: once when splitting the graph into filters
    (where ``\\ ' [ ] , ;`` are special) and once when splitting a filter's
    options (where ``\\ ' :`` are special), so escape for the inner level first.
    """
    inner = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", inner)


def _video_filters(plan: ClipPlan, srt_path: Path | None) -> str:
    filters: list[str] = []
    if plan.vertical:
        width, height = VERTICAL_SIZE
        # The largest centred 9:16 window (crop centres by default), even-sized.
        filters.append(r"crop=w=trunc(min(iw\,ih*9/16)/2)*2:h=trunc(min(ih\,iw*16/9)/2)*2")
        filters.append(f"scale={width}:{height}")
    else:
        # yuv420p H.264 needs even dimensions.
        filters.append("scale=trunc(iw/2)*2:trunc(ih/2)*2")
    filters.append("setsar=1")
    if srt_path is not None:
        # After scaling, so the text is rendered at output resolution. The font
        # is named and its directory given so libass does not depend on a
        # working fontconfig setup.
        font_dir = _caption_font_dir()
        filters.append(
            f"subtitles=filename={_filter_value(str(srt_path))}"
            f":fontsdir={_filter_value(str(font_dir))}"
            f":force_style={_filter_value(f'FontName={_FONT_NAME}')}"
        )
    filters.append("format=yuv420p")
    return ",".join(filters)


def _run_ffmpeg(args: list[str], timeout_s: float) -> None:
    cmd = [_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    try:
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClipError(f"ffmpeg did not finish within {timeout_s:g} s", reason="TIMEOUT") from exc
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise ClipError(
            f"ffmpeg failed (exit code {result.returncode}): {tail or 'no error output'}",
            reason="FFMPEG_FAILED",
            stderr=tail,
        )


def _input_args(media: Path, start_s: float) -> list[str]:
    return [
        # The same allow-lists as our PyAV opens: local files, known demuxers.
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(ALLOWED_DEMUXERS),
        # -ss before -i seeks the input instead of decoding up to the start.
        "-ss",
        f"{start_s:.6f}",
        # "file:" so a name with a colon is never read as a protocol.
        "-i",
        f"file:{media.resolve()}",
    ]


# ----------------------------------------------------------------------- render


@dataclass(frozen=True)
class _Output:
    method: Method
    start_s: float
    suffix: str
    mime_type: str
    muxer: str
    args: list[str]


def _plan_output(source: _Source, plan: ClipPlan, end_s: float, srt_path: Path | None) -> _Output:
    """Choose copy or re-encode and build ffmpeg's output arguments."""
    # Source tags (device, location) and stray streams stay out of shared clips.
    common = ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    if source.kind == "audio":
        audio = ["-t", f"{end_s - plan.start_s:.6f}", "-map", "0:a:0", "-vn", *common]
        # Every audio packet is a sync point, so a copy is accurate to one frame.
        if source.audio_codec == "mp3":
            args = [*audio, "-c:a", "copy"]
            return _Output("copy", plan.start_s, ".mp3", "audio/mpeg", "mp3", args)
        if source.audio_codec == "aac":
            args = [*audio, "-c:a", "copy", "-movflags", "+faststart"]
            return _Output("copy", plan.start_s, ".m4a", "audio/mp4", "mp4", args)
        args = [*audio, "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"]
        return _Output("reencode", plan.start_s, ".m4a", "audio/mp4", "mp4", args)

    maps = ["-map", "0:V:0", "-map", "0:a:0?"]
    keyframe = source.keyframe_s
    copyable = (
        not plan.burn_captions
        and not plan.vertical
        and source.video_codec in _MP4_COPY_VIDEO
        and (not source.audio_codec or source.audio_codec in _MP4_COPY_AUDIO)
    )
    if copyable and keyframe is not None:
        # Start on the keyframe itself: ffmpeg copies from it, and the clip's
        # clock starts there rather than at the requested time.
        args = [*maps, "-t", f"{end_s - keyframe:.6f}", *common, "-c", "copy"]
        return _Output(
            "copy", keyframe, ".mp4", "video/mp4", "mp4", [*args, "-movflags", "+faststart"]
        )
    encoder = _h264_encoder()
    video_codec = ["-c:v", encoder]
    if encoder == "libx264":
        video_codec += ["-preset", "veryfast", "-crf", "23"]
    args = [
        *maps,
        "-t",
        f"{end_s - plan.start_s:.6f}",
        *common,
        "-vf",
        _video_filters(plan, srt_path),
        *video_codec,
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
    ]
    return _Output("reencode", plan.start_s, ".mp4", "video/mp4", "mp4", args)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def render_clip(
    media: Path,
    plan: ClipPlan,
    captions: Sequence[Cue],
    out_dir: Path,
    name: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RenderedClip:
    """Render `plan` of `media` into `out_dir` as `name`.mp4/.m4a/.mp3 plus `name`.srt.

    `captions` are on the original media clock. The clip and its sidecar
    appear under their final names only when complete (written to temporary
    names, then renamed); on any failure nothing is left behind and a
    ClipError says why.
    """
    if not _NAME_RE.fullmatch(name):
        raise ClipError(
            f"clip name {name!r} must be 1-128 letters, digits, '.', '_' or '-'",
            reason="INVALID_NAME",
        )
    source = _probe_source(media, plan.start_s)
    if source.duration_s > 0 and plan.start_s >= source.duration_s:
        raise ClipError(
            f"clip start ({plan.start_s:.3f} s) is beyond the end of the media "
            f"({source.duration_s:.3f} s)",
            reason="INVALID_RANGE",
        )
    end_s = min(plan.end_s, source.duration_s) if source.duration_s > 0 else plan.end_s

    out_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="reelscribe-clip-") as scratch:
        burn_srt: Path | None = None
        if source.kind == "video" and plan.burn_captions:
            burn_srt = Path(scratch) / "burn.srt"
            # The requested span: a re-encode starts exactly at plan.start_s.
            burn_cues = rebase_captions(captions, plan.start_s, end_s - plan.start_s)
            _write_text(burn_srt, _srt(burn_cues))
            if not burn_cues:
                burn_srt = None  # Nothing to draw; libass need not run.
        output = _plan_output(source, plan, end_s, burn_srt)

        final = out_dir / f"{name}{output.suffix}"
        srt_final = out_dir / f"{name}.srt"
        # Hidden temporary names in the same directory, so the renames are atomic.
        tmp_media = out_dir / f".{name}.{token}.partial"
        tmp_srt = out_dir / f".{name}.{token}.srt.partial"
        try:
            args = [*_input_args(media, output.start_s), *output.args]
            _run_ffmpeg([*args, "-f", output.muxer, str(tmp_media)], timeout_s)
            duration = _probe_output(tmp_media)
            cues = rebase_captions(captions, output.start_s, duration)
            srt_text = _srt(cues)
            _write_text(tmp_srt, srt_text)
            size = tmp_media.stat().st_size
            os.replace(tmp_media, final)
            os.replace(tmp_srt, srt_final)
        finally:
            tmp_media.unlink(missing_ok=True)
            tmp_srt.unlink(missing_ok=True)
    return RenderedClip(
        path=final,
        size_bytes=size,
        mime_type=output.mime_type,
        duration_s=duration,
        method=output.method,
        captions_srt=srt_text,
        start_s=output.start_s,
        captions_path=srt_final,
    )
