"""A transcript's speaker labels from speaker turns.

Each word takes the speaker of the turn at its middle (or the nearest turn:
word times may reach a little into the silence around speech); each segment
takes the speaker with most of its words' time (the turns it overlaps most
when it has no words).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from reelscribe.speakers.diarize import Turn


@dataclass(frozen=True)
class Timed:
    """Something timed to label: a segment or a word."""

    start_s: float
    end_s: float


def speaker_at(turns: Sequence[Turn], t: float) -> int | None:
    """The speaker of the turn at `t`, or of the nearest turn; None without turns."""
    if not turns:
        return None
    starts = [x.start_s for x in turns]
    i = bisect.bisect_right(starts, t) - 1
    candidates = [turns[k] for k in (i, i + 1) if 0 <= k < len(turns)]

    def distance(turn: Turn) -> float:
        return max(0.0, turn.start_s - t, t - turn.end_s)

    return min(candidates, key=distance).speaker


def dominant(turns: Sequence[Turn], start_s: float, end_s: float) -> int | None:
    """The speaker who speaks most between `start_s` and `end_s`; the nearest
    turn's speaker when no turn overlaps it."""
    spoken: dict[int, float] = {}
    for t in turns:
        overlap = min(t.end_s, end_s) - max(t.start_s, start_s)
        if overlap > 0:
            spoken[t.speaker] = spoken.get(t.speaker, 0.0) + overlap
    if spoken:
        return max(sorted(spoken), key=spoken.__getitem__)
    return speaker_at(turns, (start_s + end_s) / 2)


def label_segment(
    turns: Sequence[Turn], segment: Timed, words: Sequence[Timed]
) -> tuple[int | None, list[int | None]]:
    """The segment's speaker and each of its words' speakers."""
    word_speakers = [speaker_at(turns, (w.start_s + w.end_s) / 2) for w in words]
    if not words:
        return dominant(turns, segment.start_s, segment.end_s), []
    spoken: dict[int, float] = {}
    for w, s in zip(words, word_speakers, strict=True):
        if s is not None:
            # A word of no duration still counts a little.
            spoken[s] = spoken.get(s, 0.0) + max(w.end_s - w.start_s, 0.01)
    if not spoken:
        return None, word_speakers
    return max(sorted(spoken), key=spoken.__getitem__), word_speakers
