"""Choosing highlights: the best-scored moments, cut where speech pauses.

A highlight grows from one important segment to whole sentences (until the
text ends with sentence punctuation and the clip is long enough), then each
edge moves into the neighbouring silence so a clip never starts or stops
mid-word. Highlights never overlap; the best ones are chosen first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reelscribe.insights.base import Importance, Seg
from reelscribe.speech import Region

# Latin and CJK (full-width) sentence punctuation.
_SENTENCE_END = (".", "!", "?", "\u3002", "\uff01", "\uff1f", "\u2026")
#: Most of a silence a clip edge may take (half of it, up to this).
MAX_PAD_S = 0.5


@dataclass(frozen=True)
class HighlightPlan:
    """A chosen moment of the recording."""

    start_s: float
    end_s: float
    score: float
    reason: str
    text: str
    first_segment: int
    last_segment: int


def choose(
    segments: Sequence[Seg],
    importance: Sequence[Importance],
    regions: Sequence[Region],
    *,
    count: int,
    min_s: float,
    max_s: float,
    duration_s: float,
) -> list[HighlightPlan]:
    """Up to `count` non-overlapping highlights, best first."""
    position = {s.index: k for k, s in enumerate(segments)}
    ranked = sorted(
        (imp for imp in importance if imp.index in position),
        key=lambda imp: (-imp.score, imp.index),
    )
    taken: set[int] = set()
    chosen: list[HighlightPlan] = []
    for imp in ranked:
        if len(chosen) == count:
            break
        k = position[imp.index]
        if k in taken:
            continue
        first, last = _grow(segments, k, taken, min_s, max_s)
        taken.update(range(first, last + 1))
        start, end = _snap(segments[first].start_s, segments[last].end_s, regions, duration_s)
        chosen.append(
            HighlightPlan(
                start_s=start,
                end_s=end,
                score=imp.score,
                reason=imp.reason,
                text=" ".join(s.text.strip() for s in segments[first : last + 1]),
                first_segment=segments[first].index,
                last_segment=segments[last].index,
            )
        )
    return chosen


def _grow(
    segments: Sequence[Seg], k: int, taken: set[int], min_s: float, max_s: float
) -> tuple[int, int]:
    """Extend segment `k` to whole sentences and at least `min_s`, within `max_s`."""
    first = last = k

    def span(a: int, b: int) -> float:
        return segments[b].end_s - segments[a].start_s

    def free(i: int) -> bool:
        return 0 <= i < len(segments) and i not in taken

    # Start where the previous segment ended a sentence.
    while (
        free(first - 1)
        and not segments[first - 1].text.strip().endswith(_SENTENCE_END)
        and span(first - 1, last) <= max_s
    ):
        first -= 1
    # End on a sentence end, and long enough to stand alone.
    while free(last + 1) and span(first, last + 1) <= max_s:
        ends_sentence = segments[last].text.strip().endswith(_SENTENCE_END)
        if ends_sentence and span(first, last) >= min_s:
            break
        last += 1
    return first, last


def _snap(
    start_s: float, end_s: float, regions: Sequence[Region], duration_s: float
) -> tuple[float, float]:
    """Move each edge into the silence next to it (half of it, at most MAX_PAD_S)."""
    for r in regions:
        if r.is_speech:
            continue
        pad = min(MAX_PAD_S, (r.end_s - r.start_s) / 2)
        if r.start_s - 0.05 <= start_s <= r.end_s + 0.05:
            start_s = max(r.start_s, min(start_s, r.end_s) - pad)
        if r.start_s - 0.05 <= end_s <= r.end_s + 0.05:
            end_s = min(r.end_s, max(end_s, r.start_s) + pad)
    start_s = max(0.0, start_s)
    if duration_s > 0:
        end_s = min(duration_s, end_s)
    return round(start_s, 3), round(max(end_s, start_s + 0.1), 3)
