"""Whisper's log-Mel features of a long clip, computed a block of frames at a time.

faster-whisper computes the features of the whole clip it is given in one
go: for a chunk's 2 minutes of speech that is about 100 MB of scratch arrays
at once (every 25 ms frame windowed, its spectrum in complex numbers, the
magnitudes), the largest allocation of the transcribe stage (`bench.memory`).
Each frame's spectrum depends only on its own 400 samples, so the same
numbers come out a block of frames at a time; only the final normalisation
(against the loudest value of the whole clip) needs every frame, and it runs
on the small Mel array. Scratch memory is then a block's worth (about 15 MB),
and the features are bit-identical to faster-whisper's (tests/test_features.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper.feature_extractor import FeatureExtractor


class BlockFeatureExtractor(FeatureExtractor):
    """faster-whisper's `FeatureExtractor` with bounded scratch memory."""

    #: Frames per block (30 s of audio): clips up to this long take
    #: faster-whisper's own path unchanged.
    BLOCK_FRAMES = 3000
    #: Thinnest block: the Mel product of a block of one column runs as a
    #: matrix-vector product, whose sums round differently from the
    #: matrix-matrix product faster-whisper's whole array gets.
    MIN_BLOCK_FRAMES = 64

    def __call__(
        self, waveform: npt.NDArray[Any], padding: int = 160, chunk_length: int | None = None
    ) -> npt.NDArray[np.float32]:
        # The same steps as `FeatureExtractor.__call__` and its `stft`
        # (centred, reflect-padded frames, a periodic Hann window, the last
        # frame dropped), a block at a time.
        hop, n_fft = self.hop_length, self.n_fft
        frames = 1 + (len(waveform) + padding) // hop  # after the centre padding
        if frames - 1 <= self.BLOCK_FRAMES:
            out: npt.NDArray[np.float32] = super().__call__(waveform, padding, chunk_length)
            return out
        if chunk_length is not None:
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // hop
        samples = np.asarray(waveform, dtype=np.float32)
        if padding:
            samples = np.pad(samples, (0, padding))
        samples = np.pad(samples, (n_fft // 2, n_fft // 2), mode="reflect")
        framed = np.lib.stride_tricks.as_strided(
            samples, (frames, n_fft), (hop * samples.strides[0], samples.strides[0])
        )
        window = np.hanning(n_fft + 1)[:-1].astype("float32")
        kept = frames - 1
        log_spec = np.empty((self.mel_filters.shape[0], kept), dtype=np.float32)
        bounds = [*range(0, kept, self.BLOCK_FRAMES), kept]
        if len(bounds) > 2 and kept - bounds[-2] < self.MIN_BLOCK_FRAMES:
            del bounds[-2]  # a thin last block joins the one before it
        for start, end in itertools.pairwise(bounds):
            spectrum = np.fft.rfft(framed[start:end] * window, n=n_fft, axis=-1)
            # Frequency-major and contiguous, as faster-whisper lays it out
            # before the Mel product.
            magnitudes = np.abs(np.ascontiguousarray(spectrum.T, dtype=np.complex64)) ** 2
            mel = self.mel_filters @ magnitudes
            log_spec[:, start:end] = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0
