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

When speakers were labelled, a caption never mixes two speakers: WebVTT
names the speaker in a voice span (`<v Speaker 1>`), and SRT (which has no
markup for it) starts each caption with `Speaker 1: `, counted against the
line length like any other text.

Every caption output goes through `layout`: exports, exports with a
romanization line under each line of text (a `Romanizer` gives the readings,
and both lines count against the limits), and clips (a `span` of the
recording, with a narrower layout for vertical video).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

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
    #: Display name of who speaks, when speakers were labelled.
    speaker: str = ""


class Romanizer(Protocol):
    """Readings for a romanization line under each line of text (see
    `reelscribe.cantonese.JYUTPING`)."""

    def readings(self, segment: tpb.Segment, pieces: Sequence[str]) -> Sequence[str]:
        """One reading per piece of `segment`'s text, in order.

        The pieces are the segment's words, or its characters and words when it
        has no word timings; each keeps the leading space it had in the text.
        """
        ...

    def join(self, readings: Sequence[str]) -> str:
        """The readings of consecutive pieces as one line."""
        ...


@dataclass(frozen=True)
class _Word:
    start_s: float
    end_s: float
    text: str
    #: What goes between this word and the one before it on a line.
    joiner: str = " "
    #: Its romanization, when captions carry a romanization line.
    reading: str | None = None
    #: Who says it, when speakers were labelled.
    speaker: str = ""


def _joined(words: Sequence[_Word]) -> str:
    return "".join((w.joiner if i else "") + w.text for i, w in enumerate(words))


def _row_lines(row: Sequence[_Word], romanizer: Romanizer | None) -> tuple[str, ...]:
    """A line of text, and the romanization under it when it differs from the text."""
    text = _joined(row)
    if romanizer is None:
        return (text,)
    roman = romanizer.join([w.text if w.reading is None else w.reading for w in row])
    return (text, roman) if roman and roman != text else (text,)


def _rows(
    words: Sequence[_Word], max_chars: int, romanizer: Romanizer | None = None
) -> list[list[_Word]]:
    """Greedy wrap into rows whose every line (text and romanization) fits
    `max_chars`; a word longer than a line gets a row of its own."""
    rows: list[list[_Word]] = []
    current: list[_Word] = []
    for word in words:
        candidate = [*current, word]
        if not current or all(len(x) <= max_chars for x in _row_lines(candidate, romanizer)):
            current = candidate
        else:
            rows.append(current)
            current = [word]
    if current:
        rows.append(current)
    return rows


def _lines(
    words: Sequence[_Word], max_chars: int, romanizer: Romanizer | None = None
) -> tuple[str, ...]:
    return tuple(
        line for row in _rows(words, max_chars, romanizer) for line in _row_lines(row, romanizer)
    )


def wrap(words: Sequence[str], max_chars: int) -> list[str]:
    """Greedy line wrap; a word longer than a line gets a line of its own."""
    return list(_lines([_Word(0.0, 0.0, w) for w in words], max_chars))


def _unspaced(text: str) -> bool:
    return bool(_UNSPACED.match(text))


def _append(
    out: list[_Word],
    start_s: float,
    end_s: float,
    raw: str,
    reading: str | None,
    speaker: str = "",
) -> None:
    """Add one timed piece of text, attaching it to the previous word when
    Whisper wrote it without a leading space (the rest of a word)."""
    text = raw.strip()
    if not text:
        return
    attached = bool(out) and not raw[:1].isspace() and out[-1].speaker == speaker
    if attached and not (_unspaced(text) or _unspaced(out[-1].text[-1:])):
        prev = out[-1]
        joined = None if prev.reading is None or reading is None else prev.reading + reading
        out[-1] = replace(prev, end_s=max(prev.end_s, end_s), text=prev.text + text, reading=joined)
        return
    joiner = "" if out and (_unspaced(text) or _unspaced(out[-1].text[-1:])) else " "
    out.append(_Word(start_s, end_s, text, joiner, reading, speaker))


def _units(token: str) -> list[str]:
    """A whitespace-free token split where a line may break: between CJK characters."""
    if not _UNSPACED.search(token):
        return [token]
    return [u for u in re.split(f"({_UNSPACED.pattern})", token) if u]


def _pieces(seg: tpb.Segment) -> list[tuple[float, float, str]]:
    """The segment's timed pieces of text: its words, or else its characters
    and words with the segment's time spread over them by character count."""
    if seg.words:
        return [(w.start_seconds, w.end_seconds, w.text) for w in seg.words]
    units = [(u, i == 0) for token in seg.text.split() for i, u in enumerate(_units(token))]
    total = sum(len(u) for u, _ in units)
    span = seg.end_seconds - seg.start_seconds
    pieces: list[tuple[float, float, str]] = []
    t = seg.start_seconds
    for unit, starts_token in units:
        d = span * len(unit) / total
        pieces.append((t, t + d, (" " if starts_token else "") + unit))
        t += d
    return pieces


def _words(segments: Iterable[tpb.Segment], romanizer: Romanizer | None) -> list[_Word]:
    out: list[_Word] = []
    for seg in segments:
        pieces = _pieces(seg)
        if not pieces:
            continue
        readings: Sequence[str | None] = [None] * len(pieces)
        if romanizer is not None:
            readings = romanizer.readings(seg, [text for _, _, text in pieces])
        for (start_s, end_s, text), reading in zip(pieces, readings, strict=True):
            _append(out, start_s, end_s, text, reading, seg.speaker)
    return out


def _within(words: Sequence[_Word], span: tuple[float, float]) -> list[_Word]:
    """The words whose middle lies in `span`, with their times cut to it."""
    a, b = span
    return [
        replace(w, start_s=max(a, w.start_s), end_s=min(b, w.end_s))
        for w in words
        if a <= (w.start_s + w.end_s) / 2 <= b
    ]


def layout(
    segments: Iterable[tpb.Segment],
    lay: CaptionLayout,
    *,
    romanizer: Romanizer | None = None,
    span: tuple[float, float] | None = None,
    speaker_prefix: bool = False,
) -> list[Caption]:
    """Group words into captions that respect `lay`.

    A new caption starts where the speaker changes; with `speaker_prefix`
    each caption of a labelled speaker starts with `Name: ` (SRT), within
    the limits.

    With a `romanizer`, every line of text has its romanization line under it
    (when the two differ), and `lay.max_lines` counts both: 2 lines are one
    line of text and its romanization. A line and its romanization are never
    separated, so a caption always holds at least that pair.

    With a `span` (start, end in seconds), only the words in it are captioned
    and no caption runs past its end (a clip's captions).
    """
    captions: list[Caption] = []
    group: list[_Word] = []
    max_chars = lay.max_chars_per_line
    max_lines = max(lay.max_lines, 2) if romanizer is not None else lay.max_lines

    def shown(words: list[_Word]) -> list[_Word]:
        """The words as shown: after the speaker's name when it is prefixed."""
        if not speaker_prefix or not words[0].speaker:
            return words
        first = words[0]
        return [_Word(first.start_s, first.start_s, f"{first.speaker}:", reading=""), *words]

    def flush() -> None:
        if group:
            lines = _lines(shown(group), max_chars, romanizer)
            captions.append(Caption(group[0].start_s, group[-1].end_s, lines, group[0].speaker))
            group.clear()

    words = _words(segments, romanizer)
    if span is not None:
        words = _within(words, span)
    for word in words:
        if group:
            fits = len(_lines(shown([*group, word]), max_chars, romanizer)) <= max_lines
            short_enough = word.end_s - group[0].start_s <= lay.max_duration_s
            paused = word.start_s - group[-1].end_s >= PAUSE_S
            other_speaker = word.speaker != group[-1].speaker
            if not fits or not short_enough or paused or other_speaker:
                flush()
        group.append(word)
        if word.text.endswith(_SENTENCE_END):
            flush()
    flush()
    return _spaced(captions, span[1] if span is not None else math.inf)


def _spaced(captions: Sequence[Caption], until_s: float) -> list[Caption]:
    """Captions in order, none overlapping the next, each shown at least
    `MIN_DURATION_S` (a later caption starts later rather than flash by),
    none ending after `until_s` (the last starts earlier instead, if it can)."""
    fixed: list[Caption] = []
    floor = float("-inf")
    for i, cap in enumerate(captions):
        start = max(cap.start_s, floor)
        end = max(cap.end_s, start + MIN_DURATION_S)
        if i + 1 < len(captions):
            end = max(min(end, captions[i + 1].start_s), start + MIN_DURATION_S)
        if end > until_s:
            end = until_s
            start = max(floor, min(start, end - MIN_DURATION_S))
        fixed.append(Caption(start, end, cap.lines, cap.speaker))
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
    """WebVTT text (cue text escaped: it is markup there); a labelled
    speaker's cue is a voice span, `<v Speaker 1>...`."""
    blocks = [
        f"{_clock(c.start_s, '.')} --> {_clock(c.end_s, '.')}\n"
        + (f"<v {vtt_escape(c.speaker)}>" if c.speaker else "")
        + "\n".join(vtt_escape(line) for line in c.lines)
        + "\n"
        for c in captions
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def vtt_escape(text: str) -> str:
    """WebVTT cue text: `&`, `<` and `>` as entities (they start markup, and
    `-->` may not appear in a cue)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
