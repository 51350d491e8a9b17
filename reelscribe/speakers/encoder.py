"""The voice encoder: resemblyzer's speaker-embedding model on CPU.

Its weights ship inside the resemblyzer wheel (no download). The model is
loaded once per process and guarded by a lock (one forward pass at a time).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

#: Samples the encoder reads per window (1.6 s at 16 kHz: 160 mel frames).
_PARTIAL_SAMPLES = 25_600
_MEL_FRAMES = 160
_lock = threading.Lock()


@functools.cache
def _model() -> Any:
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def embed(clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """One L2-normalized 256-dimensional voice embedding per clip of 16 kHz audio.

    Each clip is brought to a common loudness, and one shorter than a window
    is repeated to fill it (silence padding would pull embeddings together).
    """
    import torch
    from resemblyzer import audio as ra

    if not clips:
        return np.zeros((0, 256), dtype=np.float32)
    mels = []
    for clip in clips:
        wav = ra.normalize_volume(np.asarray(clip, dtype=np.float32), -30, increase_only=False)
        if len(wav) == 0:
            wav = np.zeros(_PARTIAL_SAMPLES, dtype=np.float32)
        if len(wav) < _PARTIAL_SAMPLES:
            wav = np.tile(wav, _PARTIAL_SAMPLES // len(wav) + 1)
        mel = ra.wav_to_mel_spectrogram(wav[:_PARTIAL_SAMPLES])
        if len(mel) < _MEL_FRAMES:
            mel = np.pad(mel, ((0, _MEL_FRAMES - len(mel)), (0, 0)), mode="edge")
        mels.append(mel[:_MEL_FRAMES])
    model = _model()
    with _lock, torch.no_grad():
        out = model(torch.from_numpy(np.stack(mels)).to(model.device))
    vectors = out.cpu().numpy().astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)
