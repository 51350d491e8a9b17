"""Decoding itself, with the real tiny.en model: deterministic, and a clip that
decodes poorly is decoded again with a wider beam, the better pass kept."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from reelscribe.config import Settings
from reelscribe.media import decode_audio
from tests.support.media import LECTURE
from tests.support.mediagen import espeak
from workers import transcriber

GERMAN = (
    "Die Wissenschaftler untersuchen seit vielen Jahren die Strömungen im Nordatlantik "
    "und messen dort die Temperatur des Wassers in großer Tiefe. Danach fahren sie zurück in "
    "den Hafen."
)


@pytest.fixture(scope="module")
def model() -> transcriber.WhisperModel:
    settings = Settings()
    return transcriber.load_model(
        settings.speech_model_dir("tiny.en"), settings.whisper_compute_type, 1
    )


def test_a_poorly_decoded_clip_gets_the_wider_beam_deterministically(
    model: transcriber.WhisperModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # English the English-only model decodes well, then German it cannot.
    english = decode_audio(LECTURE, 16000)
    german = espeak(GERMAN, "de", tmp_path / "de")
    audio = np.concatenate([english, np.zeros(8000, np.float32), german]).astype(np.float32)

    calls: list[tuple[int, int]] = []
    real_decode = transcriber._decode

    def spy(model_: object, piece: np.ndarray, **kwargs: object) -> object:
        calls.append((len(piece), int(kwargs["beam_size"])))  # type: ignore[call-overload]
        return real_decode(model_, piece, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transcriber, "_decode", spy)
    _, first = real_decode(
        model,
        audio,
        language="en",
        word_timestamps=True,
        beam_size=1,
        between_segments=lambda: None,
    )
    assert any(transcriber._decoded_poorly(s) for s in first)

    _, segments = transcriber.transcribe(
        model, audio, language="en", word_timestamps=True, beam_size=1
    )
    result = list(segments)
    # A greedy pass, then the beam pass over the same clip; the better one is kept.
    assert calls == [(len(audio), 1), (len(audio), transcriber.FALLBACK_BEAM_SIZE)]
    assert transcriber._score(result) >= transcriber._score(first)
    assert result[0].start_s >= 0 and result[-1].end_s <= len(audio) / 16000 + 0.01

    # The same audio gives the same transcript again.
    _, again = transcriber.transcribe(
        model, audio, language="en", word_timestamps=True, beam_size=1
    )
    assert list(again) == result


def test_an_idle_worker_releases_the_checking_model_and_keeps_the_jobs(
    model: transcriber.WhisperModel,
) -> None:
    from workers.idle_models import ReleaseIdleModels

    settings = Settings()
    tiny = settings.speech_model_dir("tiny.en")
    base = settings.speech_model_dir("base")
    # A tiny.en job's chunk, then its language check with the multilingual model.
    assert transcriber.load_model(tiny, settings.whisper_compute_type, 1) is model
    checker = transcriber.multilingual_model(settings)
    assert checker is not None and base in transcriber.loaded_models()

    idle = ReleaseIdleModels(idle_s=30.0)
    t0 = time.monotonic()
    idle.before_process_message(None, None)
    # Never while a message runs, however long.
    assert idle.release(t0 + 3600) == []
    idle.after_process_message(None, None)
    # Nor before the process has been idle for idle_s.
    assert idle.release(time.monotonic() + 1) == []
    assert idle.release(time.monotonic() + 31) == [base]
    assert transcriber.loaded_models() == [tiny]

    # A base job makes base the model to keep, and tiny.en the one let go.
    assert transcriber.load_model(base, settings.whisper_compute_type, 1) is not checker
    assert transcriber.release_idle(30.0, now=time.monotonic() + 31) == [tiny]
    assert transcriber.loaded_models() == [base]
    transcriber.release_idle(0.0)  # nothing kept but the job's model
    assert transcriber.load_model(tiny, settings.whisper_compute_type, 1) is not model
