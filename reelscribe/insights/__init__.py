"""Insights: everything computed from a finished transcript.

One engine, used by the workers' post-transcription stages
(`workers.insights`) and by the server's on-demand reads (`server.insights`);
their results are stored by `reelscribe.db.insights`.

    plan        which stages a job's options ask for, in running order
                (ANALYZE → HIGHLIGHTS → RENDER_CLIPS, TRANSLATE, ROMANIZE)
    engine      the computations both sides share: analyze, choose highlights,
                translate, romanize
    highlights  the highlight-choosing algorithm (sentences cut at silences)
    providers   which analysis provider runs (`local` or `gemini`)
    base        the provider interface and the frozen types it returns
    local       the offline provider (sentence embeddings, extractive)
    gemini      the Gemini provider (calls, retries), with gemini_replies
                (prompts, reply schemas and the checks on every reply)

Rendering clips is not here: it needs the media file, so the worker stage
does it with `reelscribe.clips`.
"""

from __future__ import annotations

from reelscribe.insights.base import (
    SUMMARY_FORMATS,
    Analysis,
    Answer,
    CannotTranslate,
    ChapterData,
    Importance,
    Provider,
    ProviderError,
    Seg,
    Summary,
    Translation,
    Usage,
)
from reelscribe.insights.providers import get_provider, provider_name

__all__ = [
    "SUMMARY_FORMATS",
    "Analysis",
    "Answer",
    "CannotTranslate",
    "ChapterData",
    "Importance",
    "Provider",
    "ProviderError",
    "Seg",
    "Summary",
    "Translation",
    "Usage",
    "get_provider",
    "provider_name",
]
