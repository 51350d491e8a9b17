"""Offline speech translation to English: Whisper's `translate` task, no key needed.

Whisper translates *speech* in any language it knows into English text. The
job's transcript decides the times: consecutive transcript segments are
packed into windows of at most 30 s (Whisper's input), each window's audio is
translated in one pass, and every translated segment is given to the
transcript segment its time overlaps most (texts given to one segment are
joined in order). A transcript segment that no translated text overlaps gets
"" rather than a guess, so the stored translation keeps exactly the
transcript's segments and times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reelscribe import speech, speech_models
from reelscribe.config import Settings
from reelscribe.errors import MediaError
from reelscribe.insights import providers
from reelscribe.insights.base import Seg
from workers import decoding, transcriber
from workers.context import JobContext

#: The provider name stored with translations made here.
PROVIDER = "whisper"
#: Whisper's input window.
_WINDOW_S = 30.0
#: Audio kept around each window so words at its edges are whole.
_MARGIN_S = 0.2


def offline(settings: Settings, language: str) -> bool:
    """Whether this worker translates into `language` from the speech (see
    `reelscribe.insights.providers.translates_speech`)."""
    return providers.translates_speech(settings, language)


def job_audio(ctx: JobContext, row: Any, media: Callable[[], Path]) -> np.ndarray:
    """The job's decoded 16 kHz audio, decoded again from `media()` if the
    scratch file is gone (the merge removes it; a child job never had it)."""
    workdir = ctx.workdir(row["owner"])
    path = workdir / decoding.AUDIO_FILE
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        measured_s = row["media_duration_s"] or ctx.settings.max_media_duration_s
        decoding.redecode_job_audio(ctx, media(), workdir, float(measured_s))
    return np.memmap(path, dtype=np.float32, mode="r")


def windows(segments: Sequence[Seg]) -> list[list[Seg]]:
    """Consecutive segments in one language packed into windows of at most `_WINDOW_S`."""
    out: list[list[Seg]] = []
    for seg in segments:
        if (
            out
            and seg.language == out[-1][0].language
            and seg.end_s - out[-1][0].start_s + 2 * _MARGIN_S <= _WINDOW_S
        ):
            out[-1].append(seg)
        else:
            out.append([seg])
    return out


def translate(
    ctx: JobContext, audio: np.ndarray, segments: Sequence[Seg], *, language_assumed: bool
) -> dict[str, Any]:
    """The stored form of the English translation (one text per transcript segment).

    Each window is decoded in its segments' language (Whisper's translation
    starts from the language it believes it hears); an assumed language (an
    English-only model's `en`) is no evidence, so the model detects it then.
    """
    model = transcriber.multilingual_model(ctx.settings)
    if model is None:
        raise MediaError(
            "TRANSLATION_UNAVAILABLE",
            "translating speech to English needs the multilingual model (`make setup` installs it)",
        )
    texts: dict[int, list[str]] = {s.index: [] for s in segments}
    rate = speech.SAMPLE_RATE_HZ
    for group in windows(segments):
        ctx.check_cancelled()
        start_s = max(0.0, group[0].start_s - _MARGIN_S)
        end_s = group[-1].end_s + _MARGIN_S
        clip = np.asarray(audio[round(start_s * rate) : round(end_s * rate)], dtype=np.float32)
        if clip.size == 0:
            continue
        spoken = None if language_assumed else speech_models.whisper_language(group[0].language)
        for piece in transcriber.translate(model, clip, language=spoken):
            a, b = start_s + piece.start_s, start_s + piece.end_s
            best = max(group, key=lambda s: min(b, s.end_s) - max(a, s.start_s))
            if piece.text:
                texts[best.index].append(piece.text)
    return {"language": "en", "texts": [" ".join(texts[s.index]) for s in segments]}
