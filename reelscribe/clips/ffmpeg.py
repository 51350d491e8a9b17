"""The `ffmpeg` binary from `imageio-ffmpeg`: finding an encoder, building the
input arguments and video filters, and running it with a time limit.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import imageio_ffmpeg

from reelscribe.clips.captions import burn_in_filter
from reelscribe.clips.plan import ClipError, ClipPlan
from reelscribe.media import ALLOWED_DEMUXERS

#: Vertical (9:16) output size; both even, as yuv420p needs.
VERTICAL_SIZE = (720, 1280)
#: Characters of ffmpeg's stderr kept in a ClipError message.
_STDERR_TAIL = 2000


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


def h264_encoder() -> str:
    """The H.264 encoder this build has (libx264 preferred); ClipError if none."""
    for name in ("libx264", "libopenh264"):
        if name in _encoders():
            return name
    raise ClipError("this ffmpeg build has no H.264 encoder", reason="NO_ENCODER")


def video_filters(plan: ClipPlan, srt_path: Path | None) -> str:
    """The `-vf` graph of a re-encode: scale (or crop to 9:16), captions from `srt_path`."""
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
        # After scaling, so the text is rendered at output resolution.
        filters.append(burn_in_filter(srt_path))
    filters.append("format=yuv420p")
    return ",".join(filters)


def run(args: list[str], timeout_s: float) -> None:
    """Run ffmpeg with `args`; ClipError (TIMEOUT, FFMPEG_FAILED) with its stderr tail."""
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


def input_args(media: Path, start_s: float) -> list[str]:
    """ffmpeg's input arguments: `media`, seeked to `start_s`, under our allow-lists."""
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
