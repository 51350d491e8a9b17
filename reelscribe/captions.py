"""Caption layout and the SRT / WebVTT formats.

Captions follow common broadcast conventions by default: at most 42
characters per line, 2 lines per caption, 7 seconds per caption, and a new
caption after a sentence end or a pause. Timing comes from word timestamps;
segments without words are spread evenly over the segment.

Words keep their spelling: a piece that Whisper attaches to the previous word
(`short` + `-lock`) stays attached, and Chinese or Japanese characters are
joined without spaces (and may break anywhere between them). Every caption
stays on screen for at least `MIN_DURATION_S`, even when its words' timestamps
are degenerate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reelscribe.v1 import transcript_service_pb2 as tpb

DEFAULT_MAX_CHARS_PER_LINE = 42
DEFAULT_MAX_LINES = 2
DEFAULT_MAX_DURATION_S = 7.0
#: A silence this long between words starts a new caption.
PAUSE_S = 1.2
#: Shortest time a caption is shown (players drop or flash shorter cues).
MIN_DURATION_S = 0.5
#: Scripts written without spaces between words (CJK ideographs, kana, hangul,
#: full-width forms and CJK punctuation).
_UNSPACED = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
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
    #: What goes between this word and the one before it on a line.
    joiner: str = " "


def _joined(words: Sequence[_Word]) -> str:
    return "".join((w.joiner if i else "") + w.text for i, w in enumerate(words))


def wrap(words: Sequence[str | _Word], max_chars: int) -> list[str]:
    """Greedy line wrap; a word longer than a line gets a line of its own."""
    units = [w if isinstance(w, _Word) else _Word(0.0, 0.0, w) for w in words]
    lines: list[str] = []
    current: list[_Word] = []
    for unit in units:
        candidate = [*current, unit]
        if len(_joined(candidate)) <= max_chars or not current:
            current = candidate
        else:
            lines.append(_joined(current))
            current = [unit]
    if current:
        lines.append(_joined(current))
    return lines


def _unspaced(text: str) -> bool:
    return bool(_UNSPACED.match(text))


def _append(out: list[_Word], start_s: float, end_s: float, raw: str) -> None:
    """Add one timed piece of text, attaching it to the previous word when
    Whisper wrote it without a leading space (the rest of a word)."""
    text = raw.strip()
    if not text:
        return
    attached = bool(out) and not raw[:1].isspace()
    if attached and not (_unspaced(text) or _unspaced(out[-1].text[-1:])):
        prev = out[-1]
        out[-1] = _Word(prev.start_s, max(prev.end_s, end_s), prev.text + text, prev.joiner)
        return
    joiner = "" if out and (_unspaced(text) or _unspaced(out[-1].text[-1:])) else " "
    out.append(_Word(start_s, end_s, text, joiner))


def _units(token: str) -> list[str]:
    """A whitespace-free token split where a line may break: between CJK characters."""
    if not _UNSPACED.search(token):
        return [token]
    return [u for u in re.split(f"({_UNSPACED.pattern})", token) if u]


def _words(segments: Iterable[tpb.Segment]) -> list[_Word]:
    out: list[_Word] = []
    for seg in segments:
        if seg.words:
            for w in seg.words:
                _append(out, w.start_seconds, w.end_seconds, w.text)
            continue
        # No word timings: spread the segment's time by character count.
        pieces = [(u, i == 0) for token in seg.text.split() for i, u in enumerate(_units(token))]
        total = sum(len(u) for u, _ in pieces)
        if not total:
            continue
        span = seg.end_seconds - seg.start_seconds
        t = seg.start_seconds
        for unit, starts_token in pieces:
            d = span * len(unit) / total
            _append(out, t, t + d, (" " if starts_token else "") + unit)
            t += d
    return out


def layout(segments: Iterable[tpb.Segment], lay: CaptionLayout) -> list[Caption]:
    """Group words into captions that respect `lay`."""
    captions: list[Caption] = []
    group: list[_Word] = []

    def flush() -> None:
        if group:
            lines = wrap(group, lay.max_chars_per_line)
            captions.append(Caption(group[0].start_s, group[-1].end_s, tuple(lines)))
            group.clear()

    for word in _words(segments):
        if group:
            fits = len(wrap([*group, word], lay.max_chars_per_line)) <= lay.max_lines
            short_enough = word.end_s - group[0].start_s <= lay.max_duration_s
            paused = word.start_s - group[-1].end_s >= PAUSE_S
            if not fits or not short_enough or paused:
                flush()
        group.append(word)
        if word.text.endswith(_SENTENCE_END):
            flush()
    flush()
    return _spaced(captions)


def _spaced(captions: Sequence[Caption]) -> list[Caption]:
    """Captions in order, none overlapping the next, each shown at least
    `MIN_DURATION_S` (a later caption starts later rather than flash by)."""
    fixed: list[Caption] = []
    floor = float("-inf")
    for i, cap in enumerate(captions):
        start = max(cap.start_s, floor)
        end = max(cap.end_s, start + MIN_DURATION_S)
        if i + 1 < len(captions):
            end = max(min(end, captions[i + 1].start_s), start + MIN_DURATION_S)
        fixed.append(Caption(start, end, cap.lines))
        floor = end
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
    """WebVTT text (cue text escaped: it is markup there)."""
    blocks = [
        f"{_clock(c.start_s, '.')} --> {_clock(c.end_s, '.')}\n"
        + "\n".join(vtt_escape(line) for line in c.lines)
        + "\n"
        for c in captions
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def vtt_escape(text: str) -> str:
    """WebVTT cue text: `&`, `<` and `>` as entities (they start markup, and
    `-->` may not appear in a cue)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
