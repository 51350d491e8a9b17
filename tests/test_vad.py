"""The bounded VAD finds exactly the speech faster-whisper's own model finds."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import vad as fw_vad

from reelscribe import speech
from reelscribe import vad as bounded
from tests.support.media import LECTURE
from tests.support.mediagen import speech_samples


def test_bounded_calls_give_the_library_s_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    audio = speech_samples(LECTURE)
    audio = audio[: len(audio) // 512 * 512]
    library = fw_vad.SileroVADModel.__call__(fw_vad.get_vad_model(), audio.copy())
    # Few windows per call, so even this short recording takes many calls.
    monkeypatch.setattr(bounded, "WINDOWS_PER_CALL", 37)
    model = bounded.bounded_model()
    assert type(model).__name__ == "_BoundedSileroVAD"
    assert fw_vad.get_vad_model() is model  # what get_speech_timestamps calls
    ours = model(audio.copy())
    assert ours.shape == library.shape and len(ours) > 10 * 37
    assert np.array_equal(ours, library)
    # And the regions the pipeline cuts on are the ones the library's model gives.
    regions = speech.detect_regions(audio)
    assert any(r.is_speech for r in regions) and any(not r.is_speech for r in regions)
