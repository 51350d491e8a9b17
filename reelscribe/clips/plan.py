"""What to cut and what came out: `ClipPlan`, `RenderedClip`, and `ClipError` for failures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: One caption cue: start and end in seconds, and its text.
Cue = tuple[float, float, str]
MediaKind = Literal["video", "audio"]
Method = Literal["copy", "reencode"]


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
