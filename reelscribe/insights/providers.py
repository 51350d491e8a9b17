"""Which analysis provider runs: `local` (offline) or `gemini`, built once per process."""

from __future__ import annotations

import threading

from reelscribe.config import Settings
from reelscribe.insights.base import Provider

_providers: dict[tuple[str, ...], Provider] = {}
_lock = threading.Lock()


def provider_name(settings: Settings) -> str:
    """Which provider the settings select: `gemini` or `local`."""
    choice = settings.analysis_provider
    if choice == "auto":
        return "gemini" if settings.gemini_api_key.get_secret_value() else "local"
    if choice not in ("local", "gemini"):
        raise ValueError(f"unknown analysis provider {choice!r} (auto, local or gemini)")
    return choice


#: Targets translated offline from the speech itself (Whisper's translate task
#: writes English only), when no model provider (Gemini) is configured.
SPEECH_TRANSLATION_TARGETS = frozenset({"en"})


def translates_speech(settings: Settings, language: str) -> bool:
    """Whether a translation into `language` comes from Whisper (offline, from
    the audio) rather than from the model provider (from the transcript text)."""
    target = language.split("-")[0].lower()
    return target in SPEECH_TRANSLATION_TARGETS and provider_name(settings) == "local"


def get_provider(settings: Settings) -> Provider:
    """The process-wide provider the settings select (built once)."""
    name = provider_name(settings)
    key = (
        name,
        settings.gemini_model,
        settings.gemini_base_url,
        settings.embedding_model_dir,
        str(settings.model_cache_dir),
        str(settings.answer_min_similarity),
    )
    with _lock:
        if key not in _providers:
            _providers[key] = _build(name, settings)
        return _providers[key]


def _build(name: str, settings: Settings) -> Provider:
    if name == "gemini":
        from reelscribe.insights.gemini import GeminiProvider

        api_key = settings.gemini_api_key.get_secret_value()
        if not api_key:
            raise ValueError("the gemini provider needs GEMINI_API_KEY")
        return GeminiProvider(
            api_key,
            model=settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_s=settings.gemini_timeout_s,
            max_attempts=settings.gemini_max_attempts,
            backoff_initial_s=settings.gemini_backoff_s,
        )
    from reelscribe import embeddings
    from reelscribe.insights.local import LocalProvider

    return LocalProvider(
        embeddings.get_embedder(settings),
        answer_min_similarity=settings.answer_min_similarity,
    )
