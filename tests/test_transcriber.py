"""Decoding itself, with the real tiny.en model: deterministic, and only the
windows that decode poorly pay for the wider beam."""

from __future__ import annotations

import itertools
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


def test_only_poor_windows_are_decoded_again(
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
    poor = {s.window_start_s for s in first if transcriber._decoded_poorly(s)}
    good = {s.window_start_s for s in first} - poor
    assert poor and good, [(s.window_start_s, s.avg_logprob, s.text) for s in first]

    _, segments = transcriber.transcribe(
        model, audio, language="en", word_timestamps=True, beam_size=1
    )
    result = list(segments)
    # One greedy pass over everything, then one beam pass per poor window, each
    # over that window's audio only.
    assert calls[0] == (len(audio), 1)
    assert [beam for _, beam in calls[1:]] == [transcriber.FALLBACK_BEAM_SIZE] * len(poor)
    assert all(n < len(audio) for n, _ in calls[1:])
    # The good windows are kept exactly as the first pass decoded them.
    kept = [s for s in result if s.window_start_s in good]
    assert kept == [s for s in first if s.window_start_s in good]
    # Everything stays on the clip's clock, in order, inside the audio.
    assert all(a.start_s <= b.start_s for a, b in itertools.pairwise(result))
    assert result[0].start_s >= 0 and result[-1].end_s <= len(audio) / 16000 + 0.01
    for seg in result:
        assert all(
            seg.start_s - 0.01 <= w.start_s <= w.end_s <= seg.end_s + 0.01 for w in seg.words
        )

    # The same audio gives the same transcript again.
    _, again = transcriber.transcribe(
        model, audio, language="en", word_timestamps=True, beam_size=1
    )
    assert list(again) == result
