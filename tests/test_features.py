"""Whisper's features computed a block at a time are faster-whisper's own, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from reelscribe.media import decode_audio
from tests.support.media import LECTURE
from workers.features import BlockFeatureExtractor

HOP = 160


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Two and a half minutes of real speech (the bundled lecture, repeated)."""
    audio = decode_audio(LECTURE, 16000).astype(np.float32)
    return np.tile(audio, int(np.ceil(150 * 16000 / len(audio))))[: 150 * 16000]


@pytest.mark.parametrize(
    "samples",
    [
        29 * 16000,  # one block: faster-whisper's own path
        # Past one block, with a last block of 1, 2, 63, 64 and 65 frames
        # (a thin one joins the block before it).
        *(BlockFeatureExtractor.BLOCK_FRAMES * HOP + 1 + HOP * k for k in (0, 1, 62, 63, 64)),
        106 * 16000 + 123,  # a chunk's compacted speech
        150 * 16000,
    ],
)
def test_block_features_are_faster_whispers(speech: np.ndarray, samples: int) -> None:
    clip = speech[:samples]
    expected = FeatureExtractor()(clip)
    blocks = BlockFeatureExtractor()
    got = blocks(clip)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    # As faster-whisper's `transcribe` calls it (chunk_length sets the window).
    assert np.array_equal(blocks(clip, chunk_length=30), expected)
    assert blocks.nb_max_frames == FeatureExtractor().nb_max_frames


def test_the_model_uses_them() -> None:
    from reelscribe.config import Settings
    from workers import transcriber

    settings = Settings()
    model = transcriber.load_model(
        settings.speech_model_dir("tiny.en"), settings.whisper_compute_type, 1
    )
    assert isinstance(model.feature_extractor, BlockFeatureExtractor)
