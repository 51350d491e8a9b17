"""Captions on a clip: laid out from the transcript's words like every other
caption output (`reelscribe.captions.layout`, narrower on a vertical clip),
moved onto the clip's own clock, written as SRT, and burned into the picture by
FFmpeg's `subtitles` filter (libass) with a known font.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from reelscribe.captions import Caption, CaptionLayout, layout, to_srt
from reelscribe.clips.plan import ClipError, Cue
from reelscribe.v1 import transcript_service_pb2 as tpb

#: Where the caption font may live (Debian/Ubuntu fonts-dejavu-core, Fedora, Alpine).
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
)
_FONT_FILE = "DejaVuSans.ttf"
_FONT_NAME = "DejaVu Sans"
#: Captions on a vertical (9:16) clip: its narrow picture takes short lines.
VERTICAL_LAYOUT = CaptionLayout(max_chars_per_line=24, max_lines=2)
#: Captions on a landscape clip, and on an audio clip's sidecar.
LANDSCAPE_LAYOUT = CaptionLayout()


def clip_cues(
    segments: Sequence[tpb.Segment], start_s: float, end_s: float, *, vertical: bool
) -> list[Cue]:
    """Captions of the words spoken between `start_s` and `end_s`, still on the
    recording's clock, laid out for a vertical or a landscape picture."""
    lay = VERTICAL_LAYOUT if vertical else LANDSCAPE_LAYOUT
    caps = layout(segments, lay, span=(start_s, end_s))
    return [(c.start_s, c.end_s, "\n".join(c.lines)) for c in caps]


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


def srt(cues: Sequence[Cue]) -> str:
    """`cues` as an SRT document."""
    return to_srt([Caption(start, end, tuple(text.split("\n"))) for start, end, text in cues])


def _caption_font_dir() -> Path:
    for directory in FONT_DIRS:
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


def burn_in_filter(srt_path: Path) -> str:
    """The `subtitles` filter that draws the cues of `srt_path` into the picture.

    The font is named and its directory given so libass does not depend on a
    working fontconfig setup; ClipError (NO_CAPTION_FONT) if it is missing.
    """
    font_dir = _caption_font_dir()
    return (
        f"subtitles=filename={_filter_value(str(srt_path))}"
        f":fontsdir={_filter_value(str(font_dir))}"
        f":force_style={_filter_value(f'FontName={_FONT_NAME}')}"
    )
