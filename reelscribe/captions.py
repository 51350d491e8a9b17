"""Caption layout and the SRT / WebVTT formats.

Captions follow common broadcast conventions by default: at most 42
characters per line, 2 lines per caption, 7 seconds per caption, and a new
caption after a sentence end or a pause. Timing comes from word timestamps;
segments without words are spread evenly over the segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reelscribe.v1 import transcript_service_pb2 as tpb

DEFAULT_MAX_CHARS_PER_LINE = 42
DEFAULT_MAX_LINES = 2
DEFAULT_MAX_DURATION_S = 7.0
#: A silence this long between words starts a new caption.
PAUSE_S = 1.2
# Latin and CJK sentence ends (the full-width marks are intended).
_SENTENCE_END = (".", "?", "!", "\u3002", "\uff1f", "\uff01")


@dataclass(frozen=True)
class CaptionLayout:
    """Limits of one caption."""

    max_chars_per_line: int = DEFAULT_MAX_CHARS_PER_LINE
    max_lines: int = DEFAULT_MAX_LINES
    max_duration_s: float = DEFAULT_MAX_DURATION_S

    @classmethod
    def from_pb(cls, options: tpb.CaptionOptions) -> CaptionLayout:
        """Layout from request options (0 means the default)."""
        return cls(
            max_chars_per_line=options.max_chars_per_line or DEFAULT_MAX_CHARS_PER_LINE,
            max_lines=options.max_lines or DEFAULT_MAX_LINES,
            max_duration_s=options.max_duration_seconds or DEFAULT_MAX_DURATION_S,
        )


@dataclass(frozen=True)
class Caption:
    """One caption: a time span and its lines."""

    start_s: float
    end_s: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Word:
    start_s: float
    end_s: float
    text: str


def wrap(words: Sequence[str], max_chars: int) -> list[str]:
    """Greedy line wrap; a word longer than a line gets a line of its own."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= max_chars or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def _words(segments: Iterable[tpb.Segment]) -> list[_Word]:
    out: list[_Word] = []
    for seg in segments:
        if seg.words:
            out.extend(
                _Word(w.start_seconds, w.end_seconds, w.text.strip())
                for w in seg.words
                if w.text.strip()
            )
            continue
        tokens = seg.text.split()
        if not tokens:
            continue
        # No word timings: spread the segment's time by character count.
        total = sum(len(t) for t in tokens)
        span = seg.end_seconds - seg.start_seconds
        t = seg.start_seconds
        for token in tokens:
            d = span * len(token) / total
            out.append(_Word(t, t + d, token))
            t += d
    return out


def layout(segments: Iterable[tpb.Segment], lay: CaptionLayout) -> list[Caption]:
    """Group words into captions that respect `lay`."""
    captions: list[Caption] = []
    group: list[_Word] = []

    def flush() -> None:
        if group:
            lines = wrap([w.text for w in group], lay.max_chars_per_line)
            captions.append(Caption(group[0].start_s, group[-1].end_s, tuple(lines)))
            group.clear()

    for word in _words(segments):
        if group:
            texts = [w.text for w in group] + [word.text]
            fits = len(wrap(texts, lay.max_chars_per_line)) <= lay.max_lines
            short_enough = word.end_s - group[0].start_s <= lay.max_duration_s
            paused = word.start_s - group[-1].end_s >= PAUSE_S
            if not fits or not short_enough or paused:
                flush()
        group.append(word)
        if word.text.endswith(_SENTENCE_END):
            flush()
    flush()
    # Never overlap the next caption; never show for zero time.
    fixed: list[Caption] = []
    for i, cap in enumerate(captions):
        end = cap.end_s
        if i + 1 < len(captions):
            end = min(end, captions[i + 1].start_s)
        fixed.append(Caption(cap.start_s, max(end, cap.start_s + 0.001), cap.lines))
    return fixed


def _clock(t: float, sep: str) -> str:
    ms = max(0, round(t * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(captions: Sequence[Caption]) -> str:
    """SubRip text."""
    blocks = [
        f"{i}\n{_clock(c.start_s, ',')} --> {_clock(c.end_s, ',')}\n" + "\n".join(c.lines) + "\n"
        for i, c in enumerate(captions, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(captions: Sequence[Caption]) -> str:
    """WebVTT text."""
    blocks = [
        f"{_clock(c.start_s, '.')} --> {_clock(c.end_s, '.')}\n" + "\n".join(c.lines) + "\n"
        for c in captions
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
