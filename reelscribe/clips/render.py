"""Rendering a clip: choose copy or re-encode, run FFmpeg, probe what it wrote, and
move the clip and its caption sidecar into place only when both are complete.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reelscribe.clips import ffmpeg
from reelscribe.clips.captions import clip_cues, rebase_captions, srt
from reelscribe.clips.plan import ClipError, ClipPlan, Method, RenderedClip
from reelscribe.clips.probe import Source, probe_output, probe_source
from reelscribe.v1 import transcript_service_pb2 as tpb

#: Default wall-clock limit for one ffmpeg run.
DEFAULT_TIMEOUT_S = 300.0
#: Codecs MP4 carries well, so they may be stream-copied into the clip.
_MP4_COPY_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
_MP4_COPY_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3"})
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class _Output:
    method: Method
    start_s: float
    suffix: str
    mime_type: str
    muxer: str
    args: list[str]


def _plan_output(source: Source, plan: ClipPlan, end_s: float, srt_path: Path | None) -> _Output:
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
    encoder = ffmpeg.h264_encoder()
    video_codec = ["-c:v", encoder]
    if encoder == "libx264":
        video_codec += ["-preset", "veryfast", "-crf", "23"]
    args = [
        *maps,
        "-t",
        f"{end_s - plan.start_s:.6f}",
        *common,
        "-vf",
        ffmpeg.video_filters(plan, srt_path),
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
    segments: Sequence[tpb.Segment],
    out_dir: Path,
    name: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RenderedClip:
    """Render `plan` of `media` into `out_dir` as `name`.mp4/.m4a/.mp3 plus `name`.srt.

    `segments` are the recording's transcript (with word timings when it has
    them) on the original media clock; the words of the clip's span become its
    captions (`clip_cues`, narrower on a vertical video). The clip and its sidecar
    appear under their final names only when complete (written to temporary
    names, then renamed); on any failure nothing is left behind and a
    ClipError says why.
    """
    if not _NAME_RE.fullmatch(name):
        raise ClipError(
            f"clip name {name!r} must be 1-128 letters, digits, '.', '_' or '-'",
            reason="INVALID_NAME",
        )
    source = probe_source(media, plan.start_s)
    if source.duration_s > 0 and plan.start_s >= source.duration_s:
        raise ClipError(
            f"clip start ({plan.start_s:.3f} s) is beyond the end of the media "
            f"({source.duration_s:.3f} s)",
            reason="INVALID_RANGE",
        )
    end_s = min(plan.end_s, source.duration_s) if source.duration_s > 0 else plan.end_s
    vertical = plan.vertical and source.kind == "video"

    out_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="reelscribe-clip-") as scratch:
        burn_srt: Path | None = None
        if source.kind == "video" and plan.burn_captions:
            burn_srt = Path(scratch) / "burn.srt"
            # The requested span: a re-encode starts exactly at plan.start_s.
            burn_cues = rebase_captions(
                clip_cues(segments, plan.start_s, end_s, vertical=vertical),
                plan.start_s,
                end_s - plan.start_s,
            )
            _write_text(burn_srt, srt(burn_cues))
            if not burn_cues:
                burn_srt = None  # Nothing to draw; libass need not run.
        output = _plan_output(source, plan, end_s, burn_srt)

        final = out_dir / f"{name}{output.suffix}"
        srt_final = out_dir / f"{name}.srt"
        # Hidden temporary names in the same directory, so the renames are atomic.
        tmp_media = out_dir / f".{name}.{token}.partial"
        tmp_srt = out_dir / f".{name}.{token}.srt.partial"
        try:
            args = [*ffmpeg.input_args(media, output.start_s), *output.args]
            ffmpeg.run([*args, "-f", output.muxer, str(tmp_media)], timeout_s)
            duration = probe_output(tmp_media)
            # What the clip really holds: a copy starts on the keyframe before.
            span = (output.start_s, output.start_s + duration)
            cues = rebase_captions(
                clip_cues(segments, *span, vertical=vertical), output.start_s, duration
            )
            srt_text = srt(cues)
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
