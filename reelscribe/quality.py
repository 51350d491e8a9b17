"""Per-segment quality flags: low confidence and suspected hallucination."""

from __future__ import annotations

import math
from collections.abc import Sequence

from reelscribe.speech import Region

#: Mean word probability below which a segment is low-confidence.
LOW_CONFIDENCE = 0.5
#: gzip compression ratio above which text is a repetition loop (Whisper's own threshold).
MAX_COMPRESSION_RATIO = 2.4
#: Share of a segment that must overlap detected speech.
MIN_SPEECH_OVERLAP = 0.3


def confidence(word_probabilities: Sequence[float], avg_logprob: float) -> float:
    """Mean word probability, or the segment's token probability without words."""
    if word_probabilities:
        return sum(word_probabilities) / len(word_probabilities)
    return math.exp(avg_logprob)


def speech_overlap(start_s: float, end_s: float, regions: Sequence[Region]) -> float:
    """Share of [start_s, end_s] covered by speech regions."""
    if end_s <= start_s:
        return 0.0
    covered = sum(
        max(0.0, min(end_s, r.end_s) - max(start_s, r.start_s)) for r in regions if r.is_speech
    )
    return covered / (end_s - start_s)


def is_hallucination(
    text: str,
    start_s: float,
    end_s: float,
    *,
    compression_ratio: float,
    no_speech_prob: float,
    avg_logprob: float,
    previous_texts: Sequence[str],
    regions: Sequence[Region],
) -> bool:
    """Whether a segment looks invented rather than heard.

    Three signs: a repetition loop inside the segment (high compression
    ratio), the same text as the two segments before it, or text placed over
    what the VAD heard as silence while the model itself doubted speech.
    """
    if compression_ratio > MAX_COMPRESSION_RATIO:
        return True
    normalized = text.strip().lower()
    if (
        normalized
        and len(previous_texts) >= 2
        and all(p.strip().lower() == normalized for p in previous_texts[-2:])
    ):
        return True
    if regions and speech_overlap(start_s, end_s, regions) < MIN_SPEECH_OVERLAP:
        return no_speech_prob > 0.5 or avg_logprob < -1.0
    return False
