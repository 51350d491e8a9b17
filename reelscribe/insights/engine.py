"""The computations after transcription, shared by the worker stages and the
server's on-demand reads.

Everything here is blocking and touches no database: callers load the
transcript, call these (the server in a thread, the workers in their own),
and store what comes back with `reelscribe.db.insights`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reelscribe import cantonese
from reelscribe.config import Settings
from reelscribe.insights import highlights
from reelscribe.insights.base import Analysis, Answer, Provider, Seg, Usage
from reelscribe.insights.highlights import HighlightPlan
from reelscribe.metrics import PROVIDER_TOKENS
from reelscribe.options import JobOptions
from reelscribe.speech import Region


@dataclass(frozen=True)
class Transcript:
    """What the computations read: segments (with their words) and the language."""

    language: str
    duration_s: float
    segments: list[Seg]
    #: Word texts by segment index (empty when loaded without words).
    words: dict[int, list[str]] = field(default_factory=dict)
    #: The language was assumed (an English-only model), not detected.
    language_assumed: bool = False

    @classmethod
    def from_rows(
        cls,
        row: Mapping[str, Any],
        segments: Sequence[Mapping[str, Any]],
        words: Sequence[Mapping[str, Any]] | None = None,
    ) -> Transcript:
        """From a `transcripts` row, its segment rows and (optionally) its word rows."""
        by_segment: dict[int, list[str]] = {}
        for w in words or ():
            by_segment.setdefault(w["segment_idx"], []).append(w["text"])
        return cls(
            language=row["language"],
            duration_s=float(row["duration_s"] or 0.0),
            segments=[
                Seg(s["idx"], s["start_s"], s["end_s"], s["text"], s["language"]) for s in segments
            ],
            words=by_segment,
            language_assumed=bool(row["language_assumed"]),
        )


def count_tokens(provider: str, usage: Usage) -> None:
    """Count a provider call's tokens in the metrics."""
    if usage.total:
        PROVIDER_TOKENS.labels(provider).inc(usage.total)


def analyze(provider: Provider, segments: Sequence[Seg]) -> Analysis:
    """Summaries, chapters, topics and the importance of every segment."""
    result = provider.analyze(segments)
    count_tokens(provider.name, result.usage)
    return result


def choose_highlights(
    transcript: Transcript,
    analysis: Analysis,
    regions: Sequence[Region],
    options: JobOptions,
    settings: Settings,
) -> list[HighlightPlan]:
    """The job's highlights: as many as its options ask for (or the configured
    default), cut where speech pauses."""
    return highlights.choose(
        transcript.segments,
        analysis.importance,
        regions,
        count=options.highlight_count or settings.default_highlight_count,
        min_s=settings.highlight_min_s,
        max_s=settings.highlight_max_s,
        duration_s=transcript.duration_s,
    )


def translate(
    provider: Provider, segments: Sequence[Seg], language: str
) -> tuple[dict[str, Any], Usage]:
    """The stored form of a translation into `language`, and what it cost."""
    result = provider.translate(segments, language)
    count_tokens(provider.name, result.usage)
    return {"language": language, "texts": list(result.texts)}, result.usage


def romanize(transcript: Transcript) -> dict[str, Any]:
    """The stored form of a Cantonese transcript's romanization (Jyutping and
    Yale per segment and per word)."""
    segments = []
    for seg in transcript.segments:
        jyutping, yale = cantonese.romanize_text(seg.text)
        texts = transcript.words.get(seg.index, [])
        segments.append(
            {
                "index": seg.index,
                "jyutping": jyutping,
                "yale": yale,
                "words": cantonese.romanize_words(texts),
                "words_yale": cantonese.romanize_words(texts, yale=True),
            }
        )
    return {"segments": segments}


def answer(provider: Provider, question: str, passages: Sequence[Seg]) -> Answer:
    """The provider's answer to `question` from the retrieved `passages`."""
    result = provider.answer(question, passages)
    count_tokens(provider.name, result.usage)
    return result
