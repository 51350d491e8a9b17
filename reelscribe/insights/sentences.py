"""Sentences of a transcript, across segment boundaries, with their times.

Whisper cuts segments at pauses, not at sentence ends: a segment often ends in
the middle of a sentence ("…the rights to use, copy, modify" / "and to permit
persons…"). Extractive summaries must quote whole sentences, so the text of
all segments is joined and split again at sentence ends (`.`, `!`, `?`, `…`
and their CJK forms), and each sentence keeps the times of the characters it
spans (interpolated within a segment by character position).

A transcript without punctuation (some models write none) would otherwise be
one endless sentence: a sentence that reaches `MAX_WORDS` also ends at the
next segment boundary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reelscribe.insights.base import Seg

#: A sentence with no terminator ends at the first segment end after this many words.
MAX_WORDS = 80

#: Words whose trailing period does not end a sentence.
_ABBREVIATION_TEXT = "mr mrs ms dr prof st jr sr vs etc e.g i.e a.m p.m no fig approx inc ltd co"
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
#: A sentence end: terminators, closing quotes or brackets, then a space
#: (Latin scripts) or nothing (CJK full-width terminators).
_END = re.compile(r"[.!?…]+[\"'”\u2019)\]]*(?=\s)|[。\uff01\uff1f]+[」』”\u2019\uff09]*")


@dataclass(frozen=True)
class Sentence:
    """One sentence of the transcript; `segments` are the positions (in the
    sequence given to `split`) of the segments it touches."""

    text: str
    start_s: float
    end_s: float
    segments: tuple[int, ...]


def split(segments: Sequence[Seg]) -> list[Sentence]:
    """The sentences of `segments` (in order), each with its start and end time.

    Every non-blank character of the transcript belongs to exactly one
    sentence; sentences never overlap in time and come in time order.
    """
    text, owners = _join(segments)
    spans = _sentence_spans(text, owners)
    first: dict[int, int] = {}
    for k, owner in enumerate(owners):
        first.setdefault(owner, k)
    out = []
    for a, b in spans:
        piece = text[a:b].strip()
        if not piece:
            continue
        lead = len(text[a:b]) - len(text[a:b].lstrip())
        a, b = a + lead, a + lead + len(piece)
        touched = sorted({owners[k] for k in range(a, b) if owners[k] >= 0})
        out.append(
            Sentence(
                text=piece,
                start_s=_time_at(segments, owners, first, a),
                end_s=_time_at(segments, owners, first, b - 1, end=True),
                segments=tuple(touched),
            )
        )
    return out


def _join(segments: Sequence[Seg]) -> tuple[str, list[int]]:
    """All segment texts joined by spaces, and for each character the position
    (in `segments`) of the segment it came from (-1 for the joining spaces)."""
    parts: list[str] = []
    owners: list[int] = []
    for k, seg in enumerate(segments):
        piece = seg.text.strip()
        if not piece:
            continue
        if parts:
            parts.append(" ")
            owners.append(-1)
        parts.append(piece)
        owners.extend([k] * len(piece))
    return "".join(parts), owners


def _sentence_spans(text: str, owners: list[int]) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`."""
    ends = [m.end() for m in _END.finditer(text) if not _abbreviation(text, m.start(), m.end())]
    spans: list[tuple[int, int]] = []
    start = 0
    for end in [*ends, len(text)]:
        if end <= start:
            continue
        # Unpunctuated stretches: cut long ones at segment boundaries.
        start = _cut_long(text, owners, start, end, spans)
        spans.append((start, end))
        start = end
    return spans


def _cut_long(
    text: str, owners: list[int], start: int, end: int, spans: list[tuple[int, int]]
) -> int:
    """Append pieces of `text[start:end]` that end at a segment boundary once
    they reach MAX_WORDS words; return where the remaining piece starts."""
    words = 0
    for k in range(start, end):
        if text[k] == " " and k > start and text[k - 1] != " ":
            words += 1
        at_boundary = owners[k] == -1  # the space joining two segments
        if at_boundary and words >= MAX_WORDS and k + 1 < end:
            spans.append((start, k))
            start, words = k + 1, 0
    return start


def _abbreviation(text: str, start: int, end: int) -> bool:
    """Whether the period at `start` follows an abbreviation or a single initial,
    or the next word starts in lower case (then no sentence ended)."""
    if text[start:end].rstrip("\"'”\u2019)]") != ".":
        return False
    word = re.search(r"([\w.]+)$", text[:start])
    if word and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1):
        return True
    following = re.match(r"\s*(\S)", text[end:])
    return bool(following and following.group(1).islower())


def _time_at(
    segments: Sequence[Seg], owners: list[int], first: dict[int, int], k: int, *, end: bool = False
) -> float:
    """The time of character `k`: interpolated inside its segment by position
    (`first` maps a segment's position to its first character)."""
    while owners[k] < 0:  # a joining space never starts or ends a stripped sentence
        k += -1 if end else 1
    seg_pos = owners[k]
    seg = segments[seg_pos]
    length = len(seg.text.strip())
    fraction = (k - first[seg_pos] + (1 if end else 0)) / length
    return round(seg.start_s + fraction * (seg.end_s - seg.start_s), 3)
