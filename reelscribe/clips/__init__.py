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
Captions are laid out from the transcript's words like every caption output
(24 characters by 2 lines on a vertical clip, the export default otherwise),
rebased onto the clip's own clock and written as an SRT sidecar.

One module per concern: `plan` (what to cut, what came out, errors), `probe`
(the input, read with PyAV), `captions` (rebasing, SRT, the burn-in filter),
`ffmpeg` (the binary and its arguments) and `render` (copy or re-encode, and
the atomic write of clip and sidecar).
"""

from reelscribe.clips.captions import LANDSCAPE_LAYOUT, VERTICAL_LAYOUT, clip_cues, rebase_captions
from reelscribe.clips.ffmpeg import VERTICAL_SIZE
from reelscribe.clips.plan import ClipError, ClipPlan, Cue, MediaKind, Method, RenderedClip
from reelscribe.clips.probe import ALLOWED_VIDEO_CODECS, KEYFRAME_TOLERANCE_S, media_kind
from reelscribe.clips.render import DEFAULT_TIMEOUT_S, render_clip

__all__ = [
    "ALLOWED_VIDEO_CODECS",
    "DEFAULT_TIMEOUT_S",
    "KEYFRAME_TOLERANCE_S",
    "LANDSCAPE_LAYOUT",
    "VERTICAL_LAYOUT",
    "VERTICAL_SIZE",
    "ClipError",
    "ClipPlan",
    "Cue",
    "MediaKind",
    "Method",
    "RenderedClip",
    "clip_cues",
    "media_kind",
    "rebase_captions",
    "render_clip",
]
